//! The CPU reference forward pass: prompt at once = token by token, for every architecture.
//! (Agreement with llama.cpp is in parity.rs.)

use qwen_wgpu::loader::{GgufFile, ModelConfig};
use qwen_wgpu::model::reference::ReferenceModel;

use crate::common::*;

fn reference(preset: &str) -> ReferenceModel {
    let file = GgufFile::from_bytes(synth_writer(&tiny(preset)).to_bytes()).unwrap();
    let config = ModelConfig::from_gguf(&file).unwrap();
    ReferenceModel::load(&file, &config).unwrap()
}

#[test]
fn prompt_at_once_equals_token_by_token() {
    for preset in TINY_PRESETS {
        let model = reference(preset);
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
