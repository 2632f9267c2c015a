//! Experts beyond VRAM (`--gpu-memory`): whatever the budget leaves resident, the same
//! kernels read the same bytes, so the logits equal the all-in-VRAM logits exactly, in
//! prefill and decode, in the CPU and the GPU kernel forms, and across a re-plan that moves
//! the resident set; the counters on the GPU count every routed read and its misses.

use std::sync::Arc;

use qwen_wgpu::loader::gguf::GgufFile;
use qwen_wgpu::loader::quant::GgmlType;
use qwen_wgpu::loader::synth::{synthetic_model, SynthOptions};
use qwen_wgpu::loader::ModelConfig;
use qwen_wgpu::model::algebra::WeightBytes;
use qwen_wgpu::model::placement::ExpertSplit;
use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
use qwen_wgpu::runtime::ops::linear::matvec::MIN_GRID;
use qwen_wgpu::runtime::{DecodeBatch, GpuModel, LoadOptions, Session, SessionOptions};

use crate::common::{gpu_or_skip, tiny};

const OPTIONS: SessionOptions = SessionOptions {
    context: 64,
    ubatch: 32,
    kv_dtype: qwen_wgpu::model::algebra::KvDtype::F16,
    all_logits: false,
};
/// More than the batched form's 16 tokens, so the GPU forms group the chunk by expert.
const PROMPT: usize = 24;
const DECODE: usize = 4;

fn file_of(config: &ModelConfig) -> GgufFile {
    let opts = SynthOptions {
        weight_type: GgmlType::Q4K,
        ..SynthOptions::default()
    };
    GgufFile::from_bytes(synthetic_model(config, &opts).unwrap().to_bytes()).unwrap()
}

/// The budget that leaves `resident` experts of each layer in VRAM.
fn budget_for(config: &ModelConfig, file: &GgufFile, resident: u32) -> u64 {
    budget_for_sessions(config, file, resident, (&OPTIONS, 1))
}

/// The same for `sessions` sessions shaped by `options`.
fn budget_for_sessions(
    config: &ModelConfig,
    file: &GgufFile,
    resident: u32,
    (options, sessions): (&SessionOptions, u32),
) -> u64 {
    let wb = WeightBytes::from_file(config, file);
    let plan = options.memory_plan_for(config, &wb, sessions);
    let split = ExpertSplit::plan(config, &wb, &plan, None).unwrap();
    let per_set: f64 = split.layers.iter().map(|l| l.expert_bytes).sum();
    (split.always_resident + (resident as f64 + 0.5) * per_set) as u64
}

/// `file` loaded within `gpu_memory`, in the GPU kernel forms or the CPU ones.
fn load(
    config: &ModelConfig,
    file: &GgufFile,
    gpu_memory: Option<u64>,
    gpu_forms: bool,
) -> Option<Arc<GpuModel>> {
    let mut gpu = gpu_or_skip()?;
    gpu.features.grouped_expert_prefill = gpu_forms;
    gpu.features.batched_prompt_steps = !gpu_forms;
    gpu.features.matvec_min_grid = gpu_forms.then_some(MIN_GRID);
    gpu.features.fused_decode = gpu_forms;
    gpu.features.chunked_delta_rule = gpu_forms;
    gpu.features.matmul = MatmulForm::Tiled;
    let load = LoadOptions {
        sessions: 1,
        gpu_memory,
    };
    Some(GpuModel::load_with(gpu, file, config, &OPTIONS, load, &mut |_, _| {}).unwrap())
}

/// `file` loaded for `sessions` sessions shaped by `options`, within `gpu_memory`, in the
/// adapter's own kernel forms with the f32 tiles.
fn load_for(
    config: &ModelConfig,
    file: &GgufFile,
    (options, sessions): (&SessionOptions, u32),
    gpu_memory: Option<u64>,
) -> Option<Arc<GpuModel>> {
    let mut gpu = gpu_or_skip()?;
    gpu.features.matmul = MatmulForm::Tiled;
    let load = LoadOptions {
        sessions,
        gpu_memory,
    };
    Some(GpuModel::load_with(gpu, file, config, options, load, &mut |_, _| {}).unwrap())
}

/// The prompt's logits, then each greedy decode step's; `between` runs after the prefill.
fn run(model: &Arc<GpuModel>, between: impl FnOnce(&GpuModel)) -> Vec<Vec<f32>> {
    let mut session = Session::new(model.clone(), OPTIONS).unwrap();
    let prompt: Vec<u32> = (0..PROMPT as u32).map(|i| (7 * i + 3) % 200).collect();
    session.prefill(&prompt).unwrap();
    between(model);
    let mut all = vec![session.logits().unwrap()];
    let mut token = session.sample().unwrap();
    for _ in 0..DECODE {
        token = session.decode(token).unwrap();
        all.push(session.logits().unwrap());
    }
    all
}

fn assert_same(what: &str, got: &[Vec<f32>], want: &[Vec<f32>]) {
    for (step, (g, w)) in got.iter().zip(want).enumerate() {
        let differ = g
            .iter()
            .zip(w)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{what}: step {step}: {differ} logits differ");
    }
}

#[test]
fn logits_under_any_gpu_memory_budget_equal_all_in_vram() {
    for preset in ["tiny-qwen35moe", "tiny-qwen3moe"] {
        let config = tiny(preset);
        let file = file_of(&config);
        let n_expert = config.moe().unwrap().n_expert;
        for gpu_forms in [false, true] {
            let Some(all) = load(&config, &file, None, gpu_forms) else {
                return;
            };
            assert!(all.experts.as_ref().unwrap().split.all_resident());
            let want = run(&all, |_| {});
            for resident in [0, n_expert / 2, n_expert] {
                let budget = budget_for(&config, &file, resident);
                let model = load(&config, &file, Some(budget), gpu_forms).unwrap();
                let split = &model.experts.as_ref().unwrap().split;
                assert_eq!(split.resident, resident, "{preset}: the budget's split");
                let what = format!("{preset} gpu forms {gpu_forms} resident {resident}");
                assert_same(&what, &run(&model, |_| {}), &want);
            }
        }
    }
}

/// Half the experts resident; after the prefill the pools take other experts in other
/// slots (every slot moves) and the decode goes on with the same logits.
#[test]
fn a_replan_between_steps_keeps_the_logits() {
    let config = tiny("tiny-qwen35moe");
    let file = file_of(&config);
    let n_expert = config.moe().unwrap().n_expert;
    for gpu_forms in [false, true] {
        let Some(all) = load(&config, &file, None, gpu_forms) else {
            return;
        };
        let want = run(&all, |_| {});
        let budget = budget_for(&config, &file, n_expert / 2);
        let model = load(&config, &file, Some(budget), gpu_forms).unwrap();
        let got = run(&model, |m| {
            let cache = m.experts.as_ref().unwrap();
            let before = cache.resident_sets().unwrap();
            // The other half, last first.
            let moved: Vec<Vec<u32>> = before
                .iter()
                .map(|slots| (slots.len() as u32..n_expert).rev().collect())
                .collect();
            cache.place(&m.ctx, &m.weights.layers, &moved).unwrap();
            assert_eq!(cache.resident_sets().unwrap(), moved);
        });
        assert_same(&format!("gpu forms {gpu_forms}, re-placed"), &got, &want);
        // And a re-plan by use: the counters drive it, the logits stay.
        let got = run(&model, |m| m.replan_experts().unwrap());
        assert_same(&format!("gpu forms {gpu_forms}, re-planned"), &got, &want);
    }
}

/// Every token's k picks in every layer are counted; with no expert resident each is a
/// miss, with all resident none is.
#[test]
fn the_counters_count_every_routed_read_and_its_misses() {
    let config = tiny("tiny-qwen3moe");
    let file = file_of(&config);
    let moe = config.moe().unwrap();
    let reads = ((PROMPT + DECODE) * moe.n_expert_used as usize * config.layers.len()) as u64;
    for (resident, misses) in [(0, reads), (moe.n_expert, 0)] {
        let budget = budget_for(&config, &file, resident);
        let Some(model) = load(&config, &file, Some(budget), true) else {
            return;
        };
        let before = model.expert_traffic().unwrap().unwrap();
        run(&model, |_| {});
        let t = model.expert_traffic().unwrap().unwrap().since(&before);
        assert_eq!((t.uses, t.misses), (reads, misses), "{resident} resident");
        let per_expert = model.experts.as_ref().unwrap().split.layers[0].expert_bytes;
        assert_eq!(t.host_bytes, misses as f64 * per_expert);
    }
}

/// A budget below what every token needs names the numbers; a dense model has no experts
/// to move.
#[test]
fn a_budget_below_the_always_resident_bytes_is_refused_with_the_numbers() {
    for (preset, needle) in [
        ("tiny-qwen35moe", "every token needs in VRAM"),
        ("tiny-qwen35", "no routed experts"),
    ] {
        let config = tiny(preset);
        let file = file_of(&config);
        let Some(gpu) = gpu_or_skip() else { return };
        let load = LoadOptions {
            sessions: 1,
            gpu_memory: Some(1024),
        };
        let err = GpuModel::load_with(gpu, &file, &config, &OPTIONS, load, &mut |_, _| {})
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(needle) && err.contains("GiB"),
            "{preset}: {err}"
        );
    }
}

/// The asynchronous path: over 300 decode steps with half the experts resident the counts
/// are read back and the resident sets re-planned between steps, and the tokens are the
/// all-in-VRAM tokens.
#[test]
fn re_plans_between_decode_steps_keep_the_tokens() {
    let config = tiny("tiny-qwen35moe");
    let file = file_of(&config);
    let n_expert = config.moe().unwrap().n_expert;
    let options = SessionOptions {
        context: 400,
        ..OPTIONS
    };
    let tokens = |gpu_memory: Option<u64>| -> Option<(Vec<u32>, Arc<GpuModel>)> {
        let model = load_for(&config, &file, (&options, 1), gpu_memory)?;
        let mut session = Session::new(model.clone(), options).unwrap();
        session.prefill(&[1, 2, 3]).unwrap();
        let mut token = session.sample().unwrap();
        let mut out = Vec::new();
        for _ in 0..300 {
            token = session.decode(token).unwrap();
            out.push(token);
        }
        Some((out, model))
    };
    let Some((want, _)) = tokens(None) else {
        return;
    };
    let (got, model) = tokens(Some(budget_for(&config, &file, n_expert / 2))).unwrap();
    assert_eq!(got, want);
    let traffic = model.expert_traffic().unwrap().unwrap();
    assert!(traffic.replans >= 1, "{traffic:?}");
}

/// A server's batched steps over a split model: three sessions stepping together with half
/// the experts resident, the resident sets re-planned between steps (synchronously every 20
/// steps, and by the asynchronous read-backs the batch's tokens trigger), draw the tokens
/// the same batch draws with every expert in VRAM.
#[test]
fn re_plans_between_batched_steps_keep_the_tokens() {
    let config = tiny("tiny-qwen35moe");
    let file = file_of(&config);
    let n_expert = config.moe().unwrap().n_expert;
    let options = SessionOptions {
        context: 160,
        ..OPTIONS
    };
    let prompts: [&[u32]; 3] = [&[1, 2, 3], &[40, 41], &[7, 8, 9, 10]];
    let tokens = |gpu_memory: Option<u64>| -> Option<(Vec<Vec<u32>>, Arc<GpuModel>)> {
        let sessions = (&options, prompts.len() as u32);
        let model = load_for(&config, &file, sessions, gpu_memory)?;
        let mut sessions: Vec<Session> = prompts
            .iter()
            .map(|p| {
                let mut s = Session::new(model.clone(), options).unwrap();
                s.prefill(p).unwrap();
                s.sample_ahead().unwrap();
                s
            })
            .collect();
        let rows = prompts.len() as u32;
        let mut batch = DecodeBatch::new(model.clone(), rows, options.context).unwrap();
        let mut out = vec![Vec::new(); prompts.len()];
        for step in 0..120 {
            if step % 20 == 10 {
                model.replan_experts().unwrap();
            }
            let mut rows: Vec<&mut Session> = sessions.iter_mut().collect();
            for (o, t) in out.iter_mut().zip(batch.decode_ahead(&mut rows).unwrap()) {
                o.push(t);
            }
        }
        Some((out, model))
    };
    let Some((want, _)) = tokens(None) else {
        return;
    };
    let sessions = (&options, prompts.len() as u32);
    let budget = budget_for_sessions(&config, &file, n_expert / 2, sessions);
    let (got, model) = tokens(Some(budget)).unwrap();
    assert_eq!(got, want);
    let traffic = model.expert_traffic().unwrap().unwrap();
    // 6 synchronous re-plans, and the read-backs of 360 tokens' counts.
    assert!(traffic.replans >= 7, "{traffic:?}");
}

/// `bench --gpu-memory` as a user runs it: the split, the decode hit rate and host bytes, the
/// host link measured by a copy, and the speed the split predicts from them.
#[test]
fn bench_reports_the_split_the_hit_rate_and_the_host_link() {
    if !crate::common::binary_or_skip() || gpu_or_skip().is_none() {
        return;
    }
    let config = tiny("tiny-qwen35moe");
    let file = file_of(&config);
    let n_expert = config.moe().unwrap().n_expert;
    let dir = std::env::temp_dir().join(format!("qwen-wgpu-split-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.gguf");
    let opts = SynthOptions {
        weight_type: GgmlType::Q4K,
        ..SynthOptions::default()
    };
    std::fs::write(&path, synthetic_model(&config, &opts).unwrap().to_bytes()).unwrap();
    // The plan of OPTIONS: 64 tokens of context, 32-token steps.
    let budget = budget_for(&config, &file, n_expert / 2).to_string();
    let out = std::process::Command::new(crate::common::binary())
        .args([
            "bench",
            "-m",
            path.to_str().unwrap(),
            "-c",
            "64",
            "--ubatch",
            "32",
        ])
        .args([
            "-p",
            "8",
            "-n",
            "8",
            "-r",
            "1",
            "--json",
            "--gpu-memory",
            &budget,
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // Every trunk layer of a MoE model routes.
    let layers = config.layers.len() as u64;
    let resident = report["experts_resident"].as_u64().unwrap();
    let host = report["experts_host"].as_u64().unwrap();
    assert_eq!(resident + host, layers * n_expert as u64, "{stdout}");
    assert!(resident > 0 && host > 0, "{stdout}");
    let hit = report["expert_hit_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&hit), "{stdout}");
    assert!(report["expert_host_bytes_per_token"].as_f64().unwrap() >= 0.0);
    assert!(
        report["link_bandwidth_bytes_s"].as_f64().unwrap() > 0.0,
        "{stdout}"
    );
    assert!(
        report["expert_predicted_tok_s"].as_f64().unwrap() > 0.0,
        "{stdout}"
    );
}
