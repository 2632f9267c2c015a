//! The GPU executor against the CPU reference: for each architecture, logits after a
//! chunked prefill and after each of 16 decode steps, the same greedy tokens, no GPU object
//! created per token, and the KV cache allocated exactly as the algebra sizes it.

use std::sync::Arc;

use qwen_wgpu::loader::config::LayerKind;
use qwen_wgpu::loader::gguf::GgufFile;
use qwen_wgpu::loader::presets::preset;
use qwen_wgpu::loader::quant::GgmlType;
use qwen_wgpu::loader::synth::{synthetic_model, SynthOptions};
use qwen_wgpu::loader::ModelConfig;
use qwen_wgpu::model::algebra::{kv_total_bytes, recurrent_state_bytes, KvDtype};
use qwen_wgpu::model::algebra::{memory_plan, WeightBytes};
use qwen_wgpu::model::reference::forward::{ReferenceModel, ReferenceState};
use qwen_wgpu::model::reference::sample::argmax;
use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
use qwen_wgpu::runtime::ops::linear::matvec::MIN_GRID;
use qwen_wgpu::runtime::session::check_fits;
use qwen_wgpu::runtime::state::SequenceState;
use qwen_wgpu::runtime::{GpuModel, Sampling, Session, SessionOptions};

use crate::common::{
    assert_bindings_freed_once_idle, gpu_or_skip, operand_tol, tiny, Recording, TINY_PRESETS,
};

fn file_of(config: &ModelConfig, weight_type: GgmlType) -> GgufFile {
    let opts = SynthOptions {
        weight_type,
        ..SynthOptions::default()
    };
    let bytes = synthetic_model(config, &opts).unwrap().to_bytes();
    GgufFile::from_bytes(bytes).unwrap()
}

fn load(config: &ModelConfig, file: &GgufFile, options: SessionOptions) -> Option<Arc<GpuModel>> {
    load_with(config, file, options, None, Recording::Adapter)
}

/// `gpu_forms` forces the kernel forms of a GPU (the fused decode plan, MoE prefill grouped
/// by expert, matvec grids of at least `MIN_GRID` workgroups, the chunked delta rule, the
/// matmul on f16 operands: cooperative matrices, or their emulation where the adapter has
/// none) or of a CPU device (the staged decode plan, per slot, 16 rows a workgroup, the
/// sequential rule) with the f32 tiles of adapters without f16, so that the f32 bound holds
/// there, whatever the adapter prefers.
fn load_with(
    config: &ModelConfig,
    file: &GgufFile,
    options: SessionOptions,
    gpu_forms: Option<bool>,
    recording: Recording,
) -> Option<Arc<GpuModel>> {
    load_with_matmul(config, file, options, gpu_forms, recording, None)
}

/// [`load_with`], the matmul in `matmul` where given.
fn load_with_matmul(
    config: &ModelConfig,
    file: &GgufFile,
    options: SessionOptions,
    gpu_forms: Option<bool>,
    recording: Recording,
    matmul: Option<MatmulForm>,
) -> Option<Arc<GpuModel>> {
    let mut gpu = gpu_or_skip()?;
    recording.apply(&mut gpu);
    if let Some(g) = gpu_forms {
        gpu.features.grouped_expert_prefill = g;
        gpu.features.batched_prompt_steps = !g;
        gpu.features.matvec_min_grid = g.then_some(MIN_GRID);
        gpu.features.fused_decode = g;
        gpu.features.chunked_delta_rule = g;
        gpu.features.matmul = match gpu.features.matmul {
            own @ MatmulForm::Coop { .. } if g => own,
            _ if g && gpu.features.shader_f16 => MatmulForm::CoopEmulated,
            _ => MatmulForm::Tiled,
        };
    }
    if let Some(form) = matmul {
        gpu.features.matmul = form;
    }
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

/// Steps of greedy decode from `token`, each step's logits within `tol` of the reference's
/// (fed the same tokens from `ref_state`); with `same_tokens` the GPU's pick must be the
/// reference's argmax too.
struct Follow<'a> {
    what: &'a str,
    steps: usize,
    tol: f32,
    same_tokens: bool,
}

fn decode_like_reference(
    session: &mut Session,
    reference: &ReferenceModel,
    ref_state: &mut ReferenceState,
    mut token: u32,
    follow: Follow<'_>,
) {
    for step in 0..follow.steps {
        let next = session.decode(token).unwrap();
        let expect = reference.forward(&[token], ref_state).unwrap().remove(0);
        let what = format!("{}, decode step {step}", follow.what);
        assert_logits_close(&what, &session.logits().unwrap(), &expect, follow.tol);
        if follow.same_tokens {
            assert_eq!(next, argmax(&expect), "{what}: token");
        }
        token = next;
    }
}

/// A 21-token prompt in chunks of 8 (8 + 8 + 5: three plans, attention across chunks), then
/// 16 greedy decode steps. Both sides compute in f32 from the same blocks; the sums run in
/// other orders, so logits agree to 1e-4 of the largest |logit| with an f32 KV cache and to
/// 2e-3 with an f16 one (keys and values rounded to 11 bits).
fn generate_like_reference(
    preset: &str,
    weight_type: GgmlType,
    kv_dtype: KvDtype,
    tol: f32,
    gpu_forms: Option<bool>,
    recording: Recording,
) {
    let config = tiny(preset);
    let file = file_of(&config, weight_type);
    let options = SessionOptions {
        context: 96,
        ubatch: 8,
        kv_dtype,
        all_logits: false,
    };
    let Some(model) = load_with(&config, &file, options, gpu_forms, recording) else {
        return;
    };
    let reference = ReferenceModel::load(&file, &config).unwrap();
    let mut ref_state = reference.new_state();
    let tol = operand_tol(&model, tol);
    let mut session = Session::new(model, options).unwrap();
    let prompt: Vec<u32> = (0..21).map(|i| (i * 37 + 5) % config.n_vocab).collect();
    session.prefill(&prompt).unwrap();
    let expect = reference.forward(&prompt, &mut ref_state).unwrap();
    let what = format!(
        "{preset} {weight_type} kv {kv_dtype:?} GPU kernel forms {gpu_forms:?} recording {recording:?}"
    );
    assert_logits_close(
        &format!("{what} after prefill"),
        &session.logits().unwrap(),
        expect.last().unwrap(),
        tol,
    );
    let token = session.sample().unwrap();
    assert_eq!(token, argmax(expect.last().unwrap()), "{what}: first token");
    let follow = Follow {
        what: &what,
        steps: 16,
        tol,
        same_tokens: true,
    };
    decode_like_reference(&mut session, &reference, &mut ref_state, token, follow);
    assert_eq!(session.position(), 21 + 16);
}

#[test]
fn gpu_generates_the_reference_tokens_f32_kv() {
    for preset in TINY_PRESETS {
        generate_like_reference(
            preset,
            GgmlType::F32,
            KvDtype::F32,
            1e-4,
            None,
            Recording::Adapter,
        );
    }
    // Both kernel forms (a GPU's, a CPU device's), whichever the adapter would pick, and
    // both ways of recording steps, whichever the adapter's backend uses.
    for preset in TINY_PRESETS {
        for gpu_forms in [true, false] {
            for recording in [Recording::Adapter, Recording::Wgpu] {
                let forms = Some(gpu_forms);
                generate_like_reference(
                    preset,
                    GgmlType::F32,
                    KvDtype::F32,
                    1e-4,
                    forms,
                    recording,
                );
            }
        }
    }
}

#[test]
fn gpu_generates_the_reference_tokens_quantized_f16_kv() {
    for (preset, ty) in TINY_PRESETS
        .into_iter()
        .zip([GgmlType::Q4K, GgmlType::Q8_0, GgmlType::Q6K])
    {
        generate_like_reference(preset, ty, KvDtype::F16, 2e-3, None, Recording::Adapter);
    }
}

/// FALSIFY-HL-006: a stack of Gated DeltaNet layers only, on the GPU (subgroup kernels where
/// the adapter has them, and the workgroup-memory kernels) against the CPU scalar path:
/// 70 prompt tokens (a 64-token chunk and a 6-token one, the recurrence carried across),
/// then 8 decode steps; logits within 1e-4 of the largest |logit|.
#[test]
fn falsify_hl_006_gpu_linear_attention_equals_cpu_scalar_path() {
    let mut config = tiny("tiny-qwen35");
    config.layers = vec![LayerKind::Linear; 3];
    config.validate().unwrap();
    let file = file_of(&config, GgmlType::F32);
    let reference = ReferenceModel::load(&file, &config).unwrap();
    let prompt: Vec<u32> = (0..70).map(|i| (i * 11 + 3) % config.n_vocab).collect();
    let options = SessionOptions {
        context: 80,
        ubatch: 64,
        kv_dtype: KvDtype::F32,
        all_logits: false,
    };
    let Some(probe) = gpu_or_skip() else { return };
    let variants = if probe.features.subgroup {
        vec![true, false]
    } else {
        vec![false]
    };
    drop(probe);
    for subgroups in variants {
        let Some(mut gpu) = gpu_or_skip() else { return };
        gpu.features.subgroup = subgroups;
        let model = GpuModel::load(gpu, &file, &config, &options, &mut |_, _| {}).unwrap();
        let tol = operand_tol(&model, 1e-4);
        let mut session = Session::new(model, options).unwrap();
        let mut ref_state = reference.new_state();
        session.prefill(&prompt).unwrap();
        let expect = reference.forward(&prompt, &mut ref_state).unwrap();
        let what = format!("GDN-only stack, subgroups {subgroups}");
        assert_logits_close(
            &what,
            &session.logits().unwrap(),
            expect.last().unwrap(),
            tol,
        );
        let token = session.sample().unwrap();
        let follow = Follow {
            what: &what,
            steps: 8,
            tol,
            same_tokens: false,
        };
        decode_like_reference(&mut session, &reference, &mut ref_state, token, follow);
    }
}

/// FALSIFY-KV-006: the bytes the runtime allocates for the KV cache equal the algebra's
/// `kv_total_bytes` (attention layers only, f16 and f32), and the recurrent state equals
/// `recurrent_state_bytes`, for the test models and the published Qwen3.5-35B-A3B and
/// Qwen3-30B-A3B geometries.
#[test]
fn falsify_kv_006_allocated_kv_bytes_equal_the_algebra() {
    let Some(gpu) = gpu_or_skip() else { return };
    let mut configs: Vec<ModelConfig> = TINY_PRESETS.iter().map(|p| tiny(p)).collect();
    configs.push(preset("qwen3.5-35b-a3b").unwrap());
    configs.push(preset("qwen3-30b-a3b").unwrap());
    for config in &configs {
        for dtype in [KvDtype::F16, KvDtype::F32] {
            for capacity in [1, 96, 1000] {
                let state = SequenceState::new(&gpu, config, capacity, dtype).unwrap();
                assert_eq!(
                    state.kv_bytes(),
                    kv_total_bytes(config, capacity as u64, dtype),
                    "{} {dtype:?} {capacity} positions",
                    config.name
                );
                assert_eq!(
                    state.recurrent_bytes(),
                    recurrent_state_bytes(config).total(),
                    "{} recurrent state",
                    config.name
                );
            }
        }
    }
}

/// tiny-qwen35moe in q8_0 with a 64-token context and 8-token chunks: the plan-shape tests'
/// model.
fn tiny_moe_q8() -> (ModelConfig, GgufFile, SessionOptions) {
    let config = tiny("tiny-qwen35moe");
    let file = file_of(&config, GgmlType::Q8_0);
    let options = SessionOptions {
        context: 64,
        ubatch: 8,
        ..SessionOptions::default()
    };
    (config, file, options)
}

/// The per-token path creates nothing: after the first decode step (and a sampler change),
/// 16 more steps leave the counts of created buffers, bind groups and pipelines unchanged.
#[test]
fn decode_steps_create_no_gpu_objects() {
    let (config, file, options) = tiny_moe_q8();
    let Some(model) = load(&config, &file, options) else {
        return;
    };
    let mut session = Session::new(model.clone(), options).unwrap();
    let prompt: Vec<u32> = (1..12).collect();
    let penalised = Sampling {
        repeat_penalty: 1.1,
        ..Sampling::default()
    };
    for sampling in [Sampling::greedy(), Sampling::default(), penalised] {
        session.reset();
        session.set_sampling(sampling, 7).unwrap();
        session.prefill(&prompt).unwrap();
        let mut token = session.sample().unwrap();
        token = session.decode(token).unwrap();
        let before = (model.ctx.created.snapshot(), model.cache.len());
        for _ in 0..16 {
            token = session.decode(token).unwrap();
            assert!(token < config.n_vocab);
        }
        let after = (model.ctx.created.snapshot(), model.cache.len());
        assert_eq!(
            before, after,
            "{sampling:?}: ((buffers, bind groups), pipelines) before and after 16 steps"
        );
    }
}

/// Several sequences share one model: two sessions interleaved give each the logits it
/// gets alone, and a reset session replays its first run exactly.
#[test]
fn sessions_share_a_model_and_reset_replays() {
    let config = tiny("tiny-qwen35");
    let file = file_of(&config, GgmlType::F32);
    let options = SessionOptions {
        context: 64,
        ubatch: 8,
        kv_dtype: KvDtype::F32,
        all_logits: false,
    };
    let Some(model) = load(&config, &file, options) else {
        return;
    };
    let (pa, pb): (Vec<u32>, Vec<u32>) = ((1..14).collect(), (40..50).collect());
    let mut a = Session::new(model.clone(), options).unwrap();
    let mut b = Session::new(model, options).unwrap();
    a.prefill(&pa).unwrap();
    b.prefill(&pb).unwrap();
    let ta = a.sample().unwrap();
    let tb = b.sample().unwrap();
    let (la, lb) = (a.decode(ta).unwrap(), b.decode(tb).unwrap());
    let logits_a = a.logits().unwrap();
    a.reset();
    a.prefill(&pb).unwrap();
    assert_eq!(a.sample().unwrap(), tb, "replaying b's prompt in a");
    assert_eq!(a.decode(tb).unwrap(), lb);
    assert_eq!(
        a.logits().unwrap(),
        b.logits().unwrap(),
        "same prompt, same logits"
    );
    a.reset();
    a.prefill(&pa).unwrap();
    assert_eq!(a.decode(ta).unwrap(), la);
    assert_eq!(a.logits().unwrap(), logits_a, "after reset");
}

/// Every token's logits in one call equal the reference's (perplexity's path), and a prompt
/// past the context is refused with the sizes.
#[test]
fn all_logits_and_context_overflow() {
    let config = tiny("tiny-qwen3moe");
    let file = file_of(&config, GgmlType::F32);
    let options = SessionOptions {
        context: 32,
        ubatch: 16,
        kv_dtype: KvDtype::F32,
        all_logits: true,
    };
    let Some(model) = load(&config, &file, options) else {
        return;
    };
    let reference = ReferenceModel::load(&file, &config).unwrap();
    let tokens: Vec<u32> = (0..30).map(|i| (i * 7 + 1) % config.n_vocab).collect();
    let tol = operand_tol(&model, 1e-4);
    let mut session = Session::new(model, options).unwrap();
    let got = session.forward_all(&tokens).unwrap();
    let expect = reference
        .forward(&tokens, &mut reference.new_state())
        .unwrap();
    assert_eq!(got.len(), expect.len());
    for (t, (g, e)) in got.iter().zip(&expect).enumerate() {
        assert_logits_close(&format!("token {t}"), g, e, tol);
    }
    let err = session.prefill(&[1, 2, 3]).unwrap_err().to_string();
    assert!(err.contains("33") && err.contains("32"), "{err}");
    assert_eq!(session.position(), 30, "a refused prompt changes nothing");
}

/// A plan over the device's memory is refused before anything is allocated, saying how
/// much is missing and the context that would fit; one whose weights alone do not fit says so.
#[test]
fn a_model_that_does_not_fit_gets_a_sized_error() {
    let config = preset("qwen3.5-35b-a3b").unwrap();
    let weights = WeightBytes::uniform(&config, GgmlType::Q4K);
    let plan = memory_plan(&config, &weights, 262_144, 1, 512, KvDtype::F16);
    const GIB: u64 = 1 << 30;
    let err = check_fits(&plan, 262_144, 20 * GIB, "a 20 GiB GPU")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("short") && err.contains("a context of at most"),
        "{err}"
    );
    // The suggested context fits.
    let fits: u64 = err
        .split("a context of at most ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let smaller = memory_plan(&config, &weights, fits, 1, 512, KvDtype::F16);
    assert!(check_fits(&smaller, fits as u32, 20 * GIB, "gpu").is_ok());
    assert!(fits < 262_144);
    let err = check_fits(&plan, 262_144, 16 * GIB, "a 16 GiB GPU")
        .unwrap_err()
        .to_string();
    assert!(err.contains("weights alone do not fit"), "{err}");
}

/// The memory `inspect` predicts is what a session allocates: its activation buffers equal
/// the algebra's `sequence_activation_bytes` for the same batch and context.
#[test]
fn session_activations_equal_the_algebra() {
    use qwen_wgpu::model::algebra::sequence_activation_bytes;
    for preset in TINY_PRESETS {
        let config = tiny(preset);
        let file = file_of(&config, GgmlType::Q8_0);
        let Some(model) = load(&config, &file, SessionOptions::default()) else {
            return;
        };
        for (ubatch, context) in [(8u32, 96u32), (64, 1000)] {
            let options = SessionOptions {
                context,
                ubatch,
                ..SessionOptions::default()
            };
            let session = Session::new(model.clone(), options).unwrap();
            assert_eq!(
                session.scratch_bytes(),
                sequence_activation_bytes(&config, ubatch as u64, context as u64),
                "{preset} ubatch {ubatch} context {context}"
            );
        }
    }
}

/// The fused decode plan's shape, which the dispatch budget at Qwen3.5-35B-A3B depth (at
/// most 320 a token) rests on: the embedding; per GDN layer the input projections, the
/// conv with the delta rule, ssm_out, then the router, `moe_gate_up` and `moe_down`; per
/// attention layer the projections, q/k norm + rope, attention's two passes and the output,
/// then the same three; the head; the sampler's two passes. The staged plan of a CPU device
/// has more.
#[test]
fn the_fused_decode_plan_has_six_dispatches_a_gdn_layer_and_eight_an_attention_layer() {
    let (config, file, options) = tiny_moe_q8();
    let mut counts = Vec::new();
    for gpu_forms in [true, false] {
        let Some(model) = load_with(&config, &file, options, Some(gpu_forms), Recording::Adapter)
        else {
            return;
        };
        let session = Session::new(model, options).unwrap();
        counts.push(session.decode_dispatches());
    }
    let (linear, attention) = (config.n_linear_layers(), config.n_attention_layers());
    assert!(
        linear > 0 && attention > 0,
        "the tiny model has both mixers"
    );
    assert_eq!(
        counts[0],
        1 + 6 * linear + 8 * attention + 1 + 2,
        "fused plan"
    );
    assert!(
        counts[1] > counts[0],
        "the staged plan has more: {counts:?}"
    );
}

/// Directly recorded decode steps place a barrier only where a dispatch depends on one
/// since the last: the staged plan's independent projections of one normed row share one,
/// so it has fewer barriers than dispatches; the fused plan is a chain. Steps recorded
/// through wgpu's pass report none (wgpu places its own). Lavapipe runs dispatches in order
/// whatever the barriers say, so the tokens cannot show a missing one: the rule itself is
/// tested in `runtime::direct`.
#[test]
fn direct_steps_place_barriers_only_between_dependent_dispatches() {
    let (config, file, options) = tiny_moe_q8();
    for (gpu_forms, recording) in [
        (false, Recording::Adapter),
        (true, Recording::Adapter),
        (false, Recording::Wgpu),
    ] {
        let Some(model) = load_with(&config, &file, options, Some(gpu_forms), recording) else {
            return;
        };
        let direct = model.ctx.direct.is_some();
        let mut session = Session::new(model, options).unwrap();
        session.prefill(&[5, 9, 2]).unwrap();
        let token = session.sample().unwrap();
        session.decode(token).unwrap();
        let dispatches = session.decode_dispatches() as u32;
        let what = format!("GPU forms {gpu_forms}, recording {recording:?}");
        match (session.decode_barriers(), direct) {
            (None, false) => {}
            (Some(b), true) if gpu_forms => assert!(b <= dispatches, "{what}: {b} barriers"),
            (Some(b), true) => assert!(
                b < dispatches,
                "{what}: {b} barriers for {dispatches} dispatches, none shared"
            ),
            (b, _) => panic!("{what}: barriers {b:?} with direct recording {direct}"),
        }
    }
}

/// A directly recorded decode step is recorded once and replayed until its attention grid
/// grows (a split-KV chunk every 64 positions): 120 greedy steps from position 11 record
/// twice more after the first (at positions 64 and 128) and replay the rest, with each
/// adapter's kernel forms, and draw the tokens that steps recorded through wgpu draw.
#[test]
fn decode_steps_are_replayed_until_their_attention_grid_grows() {
    let config = tiny("tiny-qwen35moe");
    let file = file_of(&config, GgmlType::Q8_0);
    let options = SessionOptions {
        context: 160,
        ubatch: 8,
        ..SessionOptions::default()
    };
    let prompt: Vec<u32> = (1..12).collect();
    for gpu_forms in [true, false] {
        let mut tokens = Vec::new();
        for recording in [Recording::Adapter, Recording::Wgpu] {
            let Some(model) = load_with(&config, &file, options, Some(gpu_forms), recording) else {
                return;
            };
            let direct = model.ctx.direct.is_some();
            let mut session = Session::new(model, options).unwrap();
            session.prefill(&prompt).unwrap();
            let mut token = session.sample().unwrap();
            let mut drawn = vec![token];
            token = session.decode(token).unwrap();
            drawn.push(token);
            let first = session.step_replays();
            for _ in 0..119 {
                token = session.decode(token).unwrap();
                drawn.push(token);
            }
            assert_eq!(session.position(), 11 + 120);
            let (recorded, replayed) = session.step_replays();
            let what = format!("GPU forms {gpu_forms}, recording {recording:?}");
            if direct {
                assert_eq!(
                    (recorded - first.0, replayed - first.1),
                    (2, 117),
                    "{what}: steps (recorded, replayed) after the first decode step"
                );
            } else {
                assert_eq!(
                    (recorded, replayed),
                    (0, 0),
                    "{what}: nothing recorded directly"
                );
            }
            tokens.push(drawn);
        }
        assert_eq!(
            tokens[0], tokens[1],
            "GPU forms {gpu_forms}: tokens of both recorders"
        );
    }
}

/// With the repetition penalty on, a pipelined step copies the token still on the GPU into
/// the first slot of the penalty's window, whatever the window holds, so the step's commands
/// stay the same from token to token and are replayed while the window fills.
#[test]
fn penalised_pipelined_steps_are_replayed() {
    let (config, file, options) = tiny_moe_q8();
    let Some(model) = load(&config, &file, options) else {
        return;
    };
    if model.ctx.direct.is_none() {
        return;
    }
    let mut session = Session::new(model, options).unwrap();
    let penalised = Sampling {
        repeat_penalty: 1.3,
        ..Sampling::default()
    };
    session.set_sampling(penalised, 5).unwrap();
    session.prefill(&[4, 8, 15, 16, 23, 42]).unwrap();
    session.sample_ahead().unwrap();
    session.decode_ahead().unwrap();
    let (recorded, replayed) = session.step_replays();
    for _ in 0..10 {
        let token = session.decode_ahead().unwrap();
        assert!(token < config.n_vocab);
    }
    assert_eq!(session.step_replays(), (recorded, replayed + 10));
}

/// A kernel the driver will not build for direct recording (simulated with
/// `Direct::refuse`; no conformant driver here refuses one) leaves the steps that run it to
/// wgpu's pass and the others direct: refusing `flash_decode`, the decode steps report no
/// barriers and add no recorded or replayed step, the prompt's chunks are still recorded
/// directly, and the greedy tokens are those of steps all recorded through wgpu.
#[test]
fn steps_with_a_kernel_refused_for_direct_recording_go_through_wgpus_pass() {
    let (config, file, options) = tiny_moe_q8();
    let prompt: Vec<u32> = (1..22).collect();
    let mut tokens = Vec::new();
    for recording in [Recording::Refusing("flash_decode"), Recording::Wgpu] {
        let Some(model) = load_with(&config, &file, options, None, recording) else {
            return;
        };
        let direct = model.ctx.direct.is_some();
        let mut session = Session::new(model, options).unwrap();
        session.prefill(&prompt).unwrap();
        let mut token = session.sample().unwrap();
        let before = session.step_replays();
        let mut drawn = vec![token];
        for _ in 0..12 {
            token = session.decode(token).unwrap();
            drawn.push(token);
        }
        let what = format!("{recording:?}");
        assert_eq!(
            session.decode_barriers(),
            None,
            "{what}: a decode step's barriers"
        );
        assert_eq!(
            session.step_replays(),
            before,
            "{what}: decode steps recorded directly"
        );
        if direct && recording != Recording::Wgpu {
            assert!(
                before.0 > 0,
                "{what}: the prompt's chunks were recorded directly"
            );
        }
        tokens.push(drawn);
    }
    assert_eq!(
        tokens[0], tokens[1],
        "tokens with flash_decode refused, and through wgpu"
    );
}

/// A 4096-token prompt (issue 14's long context): the reference fed in steps of 512 and of
/// 1000 tokens gives the logits of the whole prompt at once (to 1e-5 of the largest
/// |logit|: the same sums, the recurrence and the attention carried across steps), and the
/// GPU, in 512-token steps with each adapter's kernel forms (the chunked delta rule and
/// grouped experts of a GPU, the sequential rule and per-slot experts of a CPU device),
/// matches it after the prompt and over 4 decode steps attending to all 4096+ positions
/// (65 split-KV chunks), to 1e-4 with f32 weights and KV cache.
#[test]
fn a_4096_token_prompt_matches_the_reference_in_any_steps() {
    let config = tiny("tiny-qwen35moe");
    let file = file_of(&config, GgmlType::F32);
    let reference = ReferenceModel::load(&file, &config).unwrap();
    let prompt: Vec<u32> = (0..4096u32)
        .map(|i| (i * 37 + i / 7 + 5) % config.n_vocab)
        .collect();
    let mut whole_state = reference.new_state();
    let whole = reference.forward(&prompt, &mut whole_state).unwrap();
    let expect = whole.last().unwrap();
    for step in [512, 1000] {
        let mut state = reference.new_state();
        let mut last = Vec::new();
        for part in prompt.chunks(step) {
            last = reference.forward(part, &mut state).unwrap().pop().unwrap();
        }
        assert_logits_close(
            &format!("reference in steps of {step}"),
            &last,
            expect,
            1e-5,
        );
    }
    let options = SessionOptions {
        context: 4200,
        ubatch: 512,
        kv_dtype: KvDtype::F32,
        all_logits: false,
    };
    for gpu_forms in [true, false] {
        let Some(model) = load_with(&config, &file, options, Some(gpu_forms), Recording::Adapter)
        else {
            return;
        };
        let tol = operand_tol(&model, 1e-4);
        let mut session = Session::new(model, options).unwrap();
        session.prefill(&prompt).unwrap();
        let what = format!("4096-token prompt, GPU kernel forms {gpu_forms}");
        assert_logits_close(&what, &session.logits().unwrap(), expect, tol);
        let mut ref_state = whole_state.clone();
        let token = session.sample().unwrap();
        assert_eq!(token, argmax(expect), "{what}: first token");
        let follow = Follow {
            what: &what,
            steps: 4,
            tol,
            same_tokens: true,
        };
        decode_like_reference(&mut session, &reference, &mut ref_state, token, follow);
    }
}

/// Prompt plans evicted while their steps may be in flight (prompts of 1 to 6 tokens, each
/// a plan of its own, four kept, nothing read back in between): the session still computes
/// the reference's logits, and the evicted plans' descriptor sets, whose freeing waits for
/// the work submitted before the eviction rather than draining the GPU, are all freed once
/// it is done.
#[test]
fn prompt_plans_evicted_in_flight_are_freed_after_their_work() {
    let (config, file, options) = tiny_moe_q8();
    let Some(model) = load(&config, &file, options) else {
        return;
    };
    let reference = ReferenceModel::load(&file, &config).unwrap();
    let mut ref_state = reference.new_state();
    let mut session = Session::new(model.clone(), options).unwrap();
    let mut prompt = Vec::new();
    for n in 1..=6u32 {
        let chunk: Vec<u32> = (0..n).map(|i| (i * 13 + n) % config.n_vocab).collect();
        session.prefill(&chunk).unwrap();
        prompt.extend(chunk);
    }
    let expect = reference.forward(&prompt, &mut ref_state).unwrap();
    let tol = operand_tol(&model, 1e-3);
    assert_logits_close(
        "after evicted prompt plans",
        &session.logits().unwrap(),
        expect.last().unwrap(),
        tol,
    );
    assert_bindings_freed_once_idle(&model);
}

/// A GPU's forms with the prompt matmuls in each tile form, on quantized weights and a
/// 32-token step (the tiled matmul's, past the batched matvec's 16): the logits against the
/// reference within the form's bound of the largest. Inputs rounded to bytes per 16 elements
/// move a random model's logits by about ten times what f16 operands do (measured here: 2e-2
/// of the largest on the tiny models, against 2e-3), and a step of the random bench-qwen35moe
/// by more where a routed expert changes; `QWEN_WGPU_MATMUL=f16` keeps f16 operands.
#[test]
fn prompt_steps_in_every_matmul_form_follow_the_reference() {
    for (preset, ty) in TINY_PRESETS
        .into_iter()
        .zip([GgmlType::Q4K, GgmlType::Q8_0, GgmlType::Q6K])
    {
        let config = tiny(preset);
        let file = file_of(&config, ty);
        let options = SessionOptions {
            context: 96,
            ubatch: 32,
            kv_dtype: KvDtype::F32,
            all_logits: false,
        };
        let reference = ReferenceModel::load(&file, &config).unwrap();
        let prompt: Vec<u32> = (0..40).map(|i| (i * 37 + 5) % config.n_vocab).collect();
        let expect = reference
            .forward(&prompt, &mut reference.new_state())
            .unwrap();
        for (form, tol) in [
            (MatmulForm::Tiled, 1e-4),
            (MatmulForm::TiledHalf, 1e-2),
            (MatmulForm::TiledInt8, 5e-2),
        ] {
            let matmul = Some(form);
            let recording = Recording::Adapter;
            let Some(model) =
                load_with_matmul(&config, &file, options, Some(true), recording, matmul)
            else {
                return;
            };
            if form == MatmulForm::TiledHalf && !model.ctx.features.shader_f16 {
                continue;
            }
            let mut session = Session::new(model, options).unwrap();
            session.prefill(&prompt).unwrap();
            let what = format!("{preset} {ty} prompt matmul {form:?}");
            assert_logits_close(
                &what,
                &session.logits().unwrap(),
                expect.last().unwrap(),
                tol,
            );
        }
    }
}
