//! The CPU reference forward pass: agreement with llama.cpp's logits on the same synthetic
//! GGUFs (goldens from tools/llamacpp_goldens.py), and prompt-at-once = token-by-token.

use qwen_wgpu::loader::{GgufFile, ModelConfig};
use qwen_wgpu::model::reference::ReferenceModel;

use crate::common::*;

fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01B3)
    })
}

fn reference(preset: &str) -> (Vec<u8>, ReferenceModel) {
    let bytes = synth_writer(&tiny(preset)).to_bytes();
    let file = GgufFile::from_bytes(bytes.clone()).unwrap();
    let config = ModelConfig::from_gguf(&file).unwrap();
    let model = ReferenceModel::load(&file, &config).unwrap();
    (bytes, model)
}

struct Golden {
    prompt: Vec<u32>,
    fixture_hash: u64,
    logits: Vec<f32>,
}

fn golden(preset: &str) -> Golden {
    let dir = format!("{}/tests/data/llamacpp", env!("CARGO_MANIFEST_DIR"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}/{preset}.json")).unwrap()).unwrap();
    let prompt = meta["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let hash = u64::from_str_radix(meta["fixture_fnv1a64"].as_str().unwrap(), 16).unwrap();
    let logits = std::fs::read(format!("{dir}/{preset}.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Golden {
        prompt,
        fixture_hash: hash,
        logits,
    }
}

/// llama.cpp's CPU backend (f32 weights, f32 KV cache) against ours, every position of a
/// 21-token prompt. Both compute in f32 with different summation orders (ggml sums norms in
/// f64 and dot products in SIMD lanes): measured worst differences 1.3e-5 (qwen35moe),
/// 1.6e-5 (qwen35), 2.6e-6 (qwen3moe) on logits of unit scale; the bound is absolute.
#[test]
fn reference_logits_match_llama_cpp() {
    const TOLERANCE: f32 = 5e-5;
    for preset in TINY_PRESETS {
        let g = golden(preset);
        let (bytes, model) = reference(preset);
        assert_eq!(
            fnv1a64(&bytes),
            g.fixture_hash,
            "{preset}: the synthetic model changed; regenerate the goldens with tools/llamacpp_goldens.py"
        );
        let mut state = model.new_state();
        let logits = model.forward(&g.prompt, &mut state).unwrap();
        let vocab = model.config.n_vocab as usize;
        let mut worst = (0.0f32, 0, 0);
        for (t, row) in logits.iter().enumerate() {
            for (i, (ours, theirs)) in row.iter().zip(&g.logits[t * vocab..]).enumerate() {
                let d = (ours - theirs).abs();
                if d > worst.0 {
                    worst = (d, t, i);
                }
            }
        }
        eprintln!(
            "{preset}: max |ours - llama.cpp| = {:.2e} (position {}, token {})",
            worst.0, worst.1, worst.2
        );
        assert!(worst.0 <= TOLERANCE, "{preset}: logits differ by {worst:?}");
        // Same greedy token at every position.
        for (t, row) in logits.iter().enumerate() {
            let theirs = &g.logits[t * vocab..(t + 1) * vocab];
            assert_eq!(
                argmax(row),
                argmax(theirs),
                "{preset}: argmax at position {t}"
            );
        }
    }
}

fn argmax(x: &[f32]) -> usize {
    (0..x.len()).fold(0, |b, i| if x[i] > x[b] { i } else { b })
}

#[test]
fn prompt_at_once_equals_token_by_token() {
    for preset in TINY_PRESETS {
        let (_, model) = reference(preset);
        let prompt: Vec<u32> = (0..17).map(|i| (i * 37 + 5) % 263).collect();
        let at_once = model.forward(&prompt, &mut model.new_state()).unwrap();
        let mut state = model.new_state();
        for (t, &tok) in prompt.iter().enumerate() {
            let one = model.forward(&[tok], &mut state).unwrap();
            for (a, b) in at_once[t].iter().zip(&one[0]) {
                assert!((a - b).abs() <= 1e-5, "{preset} position {t}: {a} vs {b}");
            }
        }
        assert_eq!(state.pos, prompt.len());
        // Out-of-vocabulary ids are an error, not a panic.
        assert!(model.forward(&[263], &mut model.new_state()).is_err());
    }
}
