//! The GGUF reader: round trips through the writer, every metadata type, and a typed error
//! (never a panic) for every lie a hostile file can tell.

use qwen_wgpu::error::GgufError;
use qwen_wgpu::loader::gguf::{GgufFile, MetaArray, MetaValue};
use qwen_wgpu::loader::gguf_writer::GgufWriter;
use qwen_wgpu::loader::quantize::encode_floats;
use qwen_wgpu::loader::GgmlType;
use qwen_wgpu::rng::SplitMix64;

use crate::common::*;

/// A small file that uses every metadata value type, nested and string arrays, and tensors
/// of an unquantized, a 32-block and a 256-block type.
fn every_type_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set("t.u8", MetaValue::U8(200));
    w.set("t.i8", MetaValue::I8(-100));
    w.set("t.u16", MetaValue::U16(60_000));
    w.set("t.i16", MetaValue::I16(-30_000));
    w.set("t.u32", MetaValue::U32(4_000_000_000));
    w.set("t.i32", MetaValue::I32(-2_000_000_000));
    w.set("t.f32", MetaValue::F32(1.5e-6));
    w.set("t.bool", MetaValue::Bool(true));
    w.set("t.string", MetaValue::String("héllo wörld 你好".into()));
    w.set("t.u64", MetaValue::U64(u64::MAX - 1));
    w.set("t.i64", MetaValue::I64(i64::MIN + 1));
    w.set("t.f64", MetaValue::F64(-2.25e300));
    w.set(
        "t.strings",
        MetaValue::Array(MetaArray::String(vec![
            "a".into(),
            "".into(),
            "Ġthe".into(),
        ])),
    );
    w.set(
        "t.bools",
        MetaValue::Array(MetaArray::Bool(vec![true, false, true])),
    );
    w.set("t.f32s", MetaValue::Array(MetaArray::F32(vec![0.5, -1.0])));
    w.set("t.empty", MetaValue::Array(MetaArray::U8(vec![])));
    w.set(
        "t.nested",
        MetaValue::Array(MetaArray::Array(vec![
            MetaArray::I32(vec![1, 2, 3]),
            MetaArray::String(vec!["x".into()]),
            MetaArray::Array(vec![MetaArray::U64(vec![7])]),
        ])),
    );
    let mut rng = SplitMix64::new(1);
    let values: Vec<f32> = (0..48).map(|_| rng.symmetric_f32()).collect();
    w.add_tensor(
        "a.weight",
        &[16, 3],
        GgmlType::F32,
        encode_floats(&values, GgmlType::F32),
    )
    .unwrap();
    let q8: Vec<u8> = (0..2 * 34).map(|_| rng.next_u64() as u8).collect();
    w.add_tensor("b.q8", &[64], GgmlType::Q8_0, q8).unwrap();
    let q4k: Vec<u8> = (0..144).map(|_| rng.next_u64() as u8).collect();
    w.add_tensor("c.q4k", &[256, 1, 1, 1], GgmlType::Q4K, q4k)
        .unwrap();
    w
}

#[test]
fn every_metadata_type_round_trips() {
    let w = every_type_writer();
    let bytes = w.to_bytes();
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.get("t.u8"), Some(&MetaValue::U8(200)));
    assert_eq!(f.get("t.i64"), Some(&MetaValue::I64(i64::MIN + 1)));
    assert_eq!(f.get("t.f64"), Some(&MetaValue::F64(-2.25e300)));
    assert_eq!(
        f.get("t.string").and_then(MetaValue::as_str),
        Some("héllo wörld 你好")
    );
    let nested = f.get("t.nested").and_then(MetaValue::as_array).unwrap();
    assert_eq!(
        nested,
        &MetaArray::Array(vec![
            MetaArray::I32(vec![1, 2, 3]),
            MetaArray::String(vec!["x".into()]),
            MetaArray::Array(vec![MetaArray::U64(vec![7])]),
        ])
    );
    assert_eq!(f.metadata().len(), 17);
    // Metadata order is file order.
    assert_eq!(f.metadata()[0].0, "t.u8");
    assert_eq!(f.tensors().len(), 3);
    let q4k = f.tensor("c.q4k").unwrap();
    assert_eq!(q4k.dims, vec![256, 1, 1, 1]);
    assert_eq!(q4k.n_bytes, 144);
    assert_eq!(q4k.data_offset % f.alignment(), 0);
}

#[test]
fn synthetic_models_round_trip_metadata_and_tensor_bytes() {
    for name in TINY_PRESETS {
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Bf16] {
            let opts = qwen_wgpu::loader::synth::SynthOptions {
                weight_type: ty,
                ..Default::default()
            };
            let w = qwen_wgpu::loader::synth::synthetic_model(&tiny(name), &opts).unwrap();
            let bytes = w.to_bytes();
            let f = GgufFile::from_bytes(bytes.clone()).unwrap();
            // Writing what was read gives the same bytes: metadata, tensor infos and data.
            let mut again = GgufWriter::new();
            for (k, v) in f.metadata() {
                again.set(k, v.clone());
            }
            for t in f.tensors() {
                let data = f.tensor_data(&t.name).unwrap().to_vec();
                again
                    .add_tensor(&t.name, &t.dims, t.ggml_type, data)
                    .unwrap();
            }
            assert_eq!(
                again.to_bytes(),
                bytes,
                "{name} {ty}: re-written file differs"
            );
        }
    }
}

#[test]
fn version_2_and_other_alignments_are_read() {
    for (version, alignment) in [(2, 32), (3, 1), (3, 64), (2, 4096)] {
        let mut w = every_type_writer();
        w.set_version(version);
        w.set_alignment(alignment).unwrap();
        let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
        assert_eq!(f.version(), version);
        assert_eq!(f.alignment(), alignment as u64);
        assert_eq!(f.data_start() % alignment as u64, 0);
        for t in f.tensors() {
            assert_eq!(f.tensor_data(&t.name).unwrap().len() as u64, t.n_bytes);
        }
    }
}

#[test]
fn tensor_data_is_zero_copy_from_the_map() {
    let dir = std::env::temp_dir().join(format!("qwen-wgpu-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("every-type.gguf");
    let w = every_type_writer();
    w.write_to(&path).unwrap();
    let f = GgufFile::open(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let t = f.tensor("b.q8").unwrap();
    let start = (f.data_start() + t.data_offset) as usize;
    assert_eq!(f.tensor_data("b.q8").unwrap(), &bytes[start..start + 68]);
    assert!(f.tensor_data("missing").is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn read(bytes: Vec<u8>) -> GgufError {
    match GgufFile::from_bytes(bytes) {
        Ok(_) => panic!("a corrupt file was accepted"),
        Err(e) => e,
    }
}

#[test]
fn header_lies_are_typed_errors() {
    let good = every_type_writer().to_bytes();

    let mut b = good.clone();
    b[0] = b'X';
    assert!(matches!(read(b), GgufError::BadMagic { .. }));

    for version in [0, 1, 4, 3u32.swap_bytes()] {
        let mut b = good.clone();
        put_u32(&mut b, 4, version);
        let e = read(b);
        assert!(matches!(e, GgufError::UnsupportedVersion { .. }), "{e}");
        if version == 3u32.swap_bytes() {
            assert!(e.to_string().contains("big-endian"), "{e}");
        }
    }

    // Tensor count and metadata count far beyond what the file could hold.
    let mut b = good.clone();
    put_u64(&mut b, 8, 1 << 40);
    assert!(matches!(read(b), GgufError::CountTooLarge { .. }));
    let mut b = good.clone();
    put_u64(&mut b, 16, u64::MAX);
    let e = read(b);
    assert!(
        matches!(e, GgufError::CountTooLarge { offset: 16, .. }),
        "{e}"
    );

    // The first key's length runs past the end of the file.
    let mut b = good.clone();
    put_u64(&mut b, 24, 1 << 50);
    let e = read(b);
    assert!(matches!(e, GgufError::Truncated { offset: 32, .. }), "{e}");
    assert!(e.to_string().contains("metadata[0] key"), "{e}");

    // An unknown value type on the first key ("t.u8", 4 bytes).
    let mut b = good.clone();
    put_u32(&mut b, 24 + 8 + 4, 13);
    let e = read(b);
    assert!(
        matches!(e, GgufError::UnknownValueType { type_id: 13, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("t.u8"), "{e}");

    // A bool that is neither 0 nor 1: key "t.bool" is the 8th entry; find it by content.
    let mut b = good.clone();
    let key = b"t.bool";
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    b[at] = 7;
    assert!(matches!(read(b), GgufError::InvalidBool { value: 7, .. }));

    // Invalid UTF-8 in a string value.
    let mut b = good.clone();
    let s = "héllo".as_bytes();
    let at = b.windows(s.len()).position(|w| w == s).unwrap();
    b[at + 1] = 0xFF;
    let e = read(b);
    assert!(matches!(e, GgufError::InvalidUtf8 { .. }), "{e}");
}

#[test]
fn alignment_and_duplicate_keys_are_checked() {
    for bad in [0u32, 3, 48] {
        let mut w = every_type_writer();
        w.set("general.alignment", MetaValue::U32(bad));
        let e = read(w.to_bytes());
        assert!(matches!(e, GgufError::BadAlignment { .. }), "{bad}: {e}");
    }
    let mut w = every_type_writer();
    w.set("general.alignment", MetaValue::U64(32));
    assert!(matches!(read(w.to_bytes()), GgufError::BadAlignment { .. }));

    // Rename the second key to the first one's name (same length: "t.i8" -> "t.u8").
    let mut b = every_type_writer().to_bytes();
    let at = b.windows(4).position(|w| w == b"t.i8").unwrap();
    b[at + 2] = b'u';
    assert!(matches!(read(b), GgufError::DuplicateKey { .. }));

    // Arrays nested past the limit.
    let mut nested = MetaArray::U8(vec![1]);
    for _ in 0..10 {
        nested = MetaArray::Array(vec![nested]);
    }
    let mut w = GgufWriter::new();
    w.set("deep", MetaValue::Array(nested));
    assert!(matches!(
        read(w.to_bytes()),
        GgufError::NestingTooDeep { .. }
    ));
}

#[test]
fn tensor_lies_are_typed_errors() {
    let good = every_type_writer().to_bytes();
    let f = GgufFile::from_bytes(good.clone()).unwrap();
    let a = f.tensor("a.weight").unwrap().clone();
    let b_t = f.tensor("b.q8").unwrap().clone();
    let c = f.tensor("c.q4k").unwrap().clone();

    let mut b = good.clone();
    put_u32(&mut b, n_dims_offset(&a), 5);
    let e = read(b);
    assert!(
        matches!(&e, GgufError::TooManyDims { tensor, n_dims: 5, .. } if tensor == "a.weight"),
        "{e}"
    );

    // Dimensions whose product overflows: 2^40 * 2^30 (c.q4k has four dims).
    let mut b = good.clone();
    put_u64(&mut b, n_dims_offset(&c) + 4, 1 << 40);
    put_u64(&mut b, n_dims_offset(&c) + 12, 1 << 30);
    let e = read(b);
    assert!(
        matches!(&e, GgufError::ElementCountOverflow { tensor, .. } if tensor == "c.q4k"),
        "{e}"
    );

    let mut b = good.clone();
    put_u64(&mut b, n_dims_offset(&a) + 4, 0);
    assert!(matches!(read(b), GgufError::ZeroDim { .. }));

    // A type id ggml never assigned, then a real one qwen-wgpu does not load (IQ2_XXS).
    let mut b = good.clone();
    put_u32(&mut b, type_offset(&a), 4);
    assert!(matches!(
        read(b),
        GgufError::UnknownTensorType { type_id: 4, .. }
    ));
    let mut b = good.clone();
    put_u32(&mut b, type_offset(&c), 16);
    let e = read(b);
    assert!(
        matches!(&e, GgufError::UnsupportedTensorType { tensor, ty: GgmlType::Iq2Xxs, .. } if tensor == "c.q4k"),
        "{e}"
    );
    assert!(e.to_string().contains("iq2_xxs"), "{e}");

    // q8_0 rows must be whole 32-element blocks: b.q8 has 64 elements, make it 48.
    let mut b = good.clone();
    put_u64(&mut b, n_dims_offset(&b_t) + 4, 48);
    assert!(matches!(
        read(b),
        GgufError::RowNotBlockAligned { ne0: 48, .. }
    ));

    let mut b = good.clone();
    put_u64(&mut b, data_offset_field(&b_t), b_t.data_offset + 1);
    assert!(matches!(read(b), GgufError::MisalignedTensor { .. }));

    let mut b = good.clone();
    put_u64(&mut b, data_offset_field(&c), 1 << 20);
    let e = read(b);
    assert!(
        matches!(&e, GgufError::TensorOutOfBounds { tensor, .. } if tensor == "c.q4k"),
        "{e}"
    );
    let mut b = good.clone();
    put_u64(&mut b, data_offset_field(&c), u64::MAX - 31);
    assert!(matches!(read(b), GgufError::TensorOutOfBounds { .. }));

    // b.q8 moved onto a.weight's bytes.
    let mut b = good.clone();
    put_u64(&mut b, data_offset_field(&b_t), a.data_offset);
    assert!(matches!(read(b), GgufError::OverlappingTensors { .. }));

    // Two infos with one name: write "z" and "y", then rename "y" to "z".
    let mut w = GgufWriter::new();
    w.add_tensor("z", &[16], GgmlType::F32, vec![0; 64])
        .unwrap();
    w.add_tensor("y", &[16], GgmlType::F32, vec![0; 64])
        .unwrap();
    let mut bytes = w.to_bytes();
    let g = GgufFile::from_bytes(bytes.clone()).unwrap();
    bytes[g.tensor("y").unwrap().info_offset as usize + 8] = b'z';
    let e = read(bytes);
    assert!(
        matches!(&e, GgufError::DuplicateTensor { tensor, .. } if tensor == "z"),
        "{e}"
    );
}

#[test]
fn a_truncated_data_section_is_reported_with_the_tensor() {
    let good = every_type_writer().to_bytes();
    let e = read(good[..good.len() - 1].to_vec());
    assert!(
        matches!(&e, GgufError::TensorOutOfBounds { tensor, .. } if tensor == "c.q4k"),
        "{e}"
    );
}

#[test]
fn every_truncation_and_thousands_of_corruptions_never_panic() {
    let good = every_type_writer().to_bytes();
    assert!(
        good.len() > 1000,
        "the fixture should exercise a real header"
    );
    for len in 0..good.len() {
        assert!(
            GgufFile::from_bytes(good[..len].to_vec()).is_err(),
            "truncation to {len} bytes was accepted"
        );
    }
    let mut rng = SplitMix64::new(0xC0FFEE);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..4000 {
        let mut b = good.clone();
        let n_edits = 1 + rng.below(4);
        for _ in 0..n_edits {
            let at = rng.below(b.len() as u64) as usize;
            // Bias towards the header, where the lies live; any byte can change.
            let at = if rng.below(4) > 0 { at % 700 } else { at };
            b[at] = match rng.below(3) {
                0 => rng.next_u64() as u8,
                1 => 0xFF,
                _ => b[at] ^ (1 << rng.below(8)),
            };
        }
        match GgufFile::from_bytes(b) {
            Ok(f) => {
                // Whatever was accepted must be internally consistent.
                for t in f.tensors() {
                    assert_eq!(
                        f.tensor_data(&t.name).map(<[u8]>::len),
                        Some(t.n_bytes as usize)
                    );
                }
                ok += 1;
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    assert!(
        ok > 0 && err > 0,
        "corruptions should both pass and fail: {ok} ok, {err} err"
    );
}
