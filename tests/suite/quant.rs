//! CPU dequantization against the Python `gguf` package's independent implementation
//! (goldens from tools/quant_goldens.py), and the quantizers' round trips.

use qwen_wgpu::loader::dequant::dequantize;
use qwen_wgpu::loader::quantize::quantize;
use qwen_wgpu::loader::GgmlType;
use qwen_wgpu::rng::SplitMix64;

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
    // Every supported block format (the unquantized types have no blocks to check).
    let types = GgmlType::SUPPORTED
        .into_iter()
        .filter(|t| t.layout().block_size > 1);
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

#[test]
fn q8_0_and_q4_0_quantize_as_gguf_py_does() {
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0] {
        let name = ty.name().to_lowercase();
        let input = floats(&golden(&format!("{name}.input.f32")));
        let expect = golden(&format!("{name}.quantized"));
        let got = quantize(ty, &input).unwrap();
        assert_eq!(got, expect, "{ty}: blocks differ from gguf-py's");
    }
}

/// Quantize then dequantize seeded near-Gaussian rows at three scales. Bounds on the
/// normalised RMS error (RMS error over RMS value) sit about 20% above what was measured
/// here: q8_0 0.52%, q6_K 1.8%, q4_K 7.0%, q4_0 7.9%.
#[test]
fn quantizers_round_trip_within_their_format_error() {
    let mut rng = SplitMix64::new(99);
    for (ty, nrmse_bound) in [
        (GgmlType::Q8_0, 0.0065),
        (GgmlType::Q6K, 0.022),
        (GgmlType::Q4K, 0.085),
        (GgmlType::Q4_0, 0.095),
    ] {
        for scale in [1e-3f32, 1.0, 300.0] {
            // Sum of uniforms: roughly Gaussian, with a non-zero mean in half the groups.
            let x: Vec<f32> = (0..4 * 256)
                .map(|i| {
                    let g: f32 = (0..4).map(|_| rng.symmetric_f32()).sum();
                    scale * (g + if (i / 32) % 2 == 0 { 0.7 } else { 0.0 })
                })
                .collect();
            let q = quantize(ty, &x).unwrap();
            assert_eq!(q.len() as u64, ty.row_bytes(x.len() as u64).unwrap());
            let y = dequantize(ty, &q, x.len()).unwrap();
            let err: f32 = x.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum();
            let norm: f32 = x.iter().map(|a| a * a).sum();
            let nrmse = (err / norm).sqrt();
            assert!(nrmse < nrmse_bound, "{ty} scale {scale}: NRMSE {nrmse}");
        }
    }
    // Zeros stay zeros, and bad input is an error, not a panic.
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4K, GgmlType::Q6K] {
        let n = ty.layout().block_size as usize;
        let y = dequantize(ty, &quantize(ty, &vec![0.0; n]).unwrap(), n).unwrap();
        assert!(y.iter().all(|&v| v == 0.0), "{ty}");
        assert!(quantize(ty, &vec![0.0; n + 1]).is_err());
        assert!(quantize(ty, &vec![f32::NAN; n]).is_err());
    }
    assert!(quantize(GgmlType::Q3K, &[0.0; 256]).is_err());
}
