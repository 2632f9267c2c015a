//! CPU dequantization against the Python `gguf` package's independent implementation
//! (goldens from tools/quant_goldens.py), and the quantizers' round trips.

use qwen_wgpu::loader::dequant::dequantize;
use qwen_wgpu::loader::GgmlType;

fn golden(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/quant/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn dequantization_matches_gguf_py_for_every_type() {
    let types = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Q8K,
        GgmlType::Iq4Nl,
        GgmlType::Iq4Xs,
        GgmlType::Mxfp4,
    ];
    for ty in types {
        let name = ty.name().to_lowercase();
        let blocks = golden(&format!("{name}.blocks"));
        let expect = floats(&golden(&format!("{name}.f32")));
        let got = dequantize(ty, &blocks, expect.len()).unwrap();
        for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
            // Bit-exact: both sides multiply in the same order in f32.
            assert_eq!(g, e, "{ty} element {i}: ours {g}, gguf-py {e}");
        }
    }
}
