//! Continuous batching's decode step (`DecodeBatch::decode_ahead`) against each session
//! decoding alone (`Session::decode_ahead`): the same tokens and, after them, the same
//! logits within the summation-order tolerance, for every architecture, greedy and seeded
//! with the repetition penalty, with sessions leaving and joining the batch between steps,
//! recorded directly (Vulkan) and through wgpu's pass.

use qwen_wgpu::loader::quant::GgmlType;
use qwen_wgpu::model::algebra::KvDtype;
use qwen_wgpu::runtime::{DecodeBatch, GpuModel, Sampling, Session, SessionOptions};

use crate::common::{
    assert_bindings_freed_once_idle, assert_close, gpu_or_skip, load_tiny, Recording, TINY_PRESETS,
};

const OPTIONS: SessionOptions = SessionOptions {
    context: 96,
    ubatch: 16,
    kv_dtype: KvDtype::F16,
    all_logits: false,
};

/// Prompts of different lengths, so the sequences sit at different positions.
const PROMPTS: [&[u32]; 3] = [
    &[3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9],
    &[27, 18, 28],
    &[
        1, 41, 42, 13, 56, 23, 7, 30, 11, 12, 60, 2, 5, 9, 17, 33, 20, 4, 6,
    ],
];

/// Which sessions each step runs together: all, then one leaving, then back.
const SCHEDULE: [&[usize]; 6] = [&[0, 1, 2], &[0, 1, 2], &[0, 2], &[1], &[0, 1, 2], &[2, 0]];

fn model(preset: &str, recording: Recording) -> Option<std::sync::Arc<GpuModel>> {
    let mut gpu = gpu_or_skip()?;
    recording.apply(&mut gpu);
    Some(load_tiny(preset, GgmlType::Q8_0, gpu, &OPTIONS))
}

/// Sessions with their prompts prefilled and a first draw ahead.
fn started(model: &std::sync::Arc<GpuModel>, sampling: Sampling) -> Vec<Session> {
    PROMPTS
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            let mut s = Session::new(model.clone(), OPTIONS).unwrap();
            s.set_sampling(sampling, 7 + i as u64).unwrap();
            s.prefill(prompt).unwrap();
            s.sample_ahead().unwrap();
            s
        })
        .collect()
}

#[test]
fn a_batched_step_draws_what_each_session_draws_alone() {
    let samplings = [
        ("greedy", Sampling::greedy()),
        (
            "seeded with a penalty",
            Sampling {
                repeat_penalty: 1.3,
                repeat_last_n: 8,
                ..Sampling::default()
            },
        ),
    ];
    // Both ways of recording a step, whichever the adapter's backend uses.
    let runs = TINY_PRESETS
        .into_iter()
        .flat_map(|p| [(p, Recording::Adapter), (p, Recording::Wgpu)]);
    for (preset, recording) in runs {
        let Some(model) = model(preset, recording) else {
            return;
        };
        let mut batch = DecodeBatch::new(model.clone(), 4, OPTIONS.context).unwrap();
        for (name, sampling) in samplings {
            let name = format!("{name}, recording {recording:?}");
            let mut alone = started(&model, sampling);
            let mut together = started(&model, sampling);
            for (step, rows) in SCHEDULE.iter().enumerate() {
                let want: Vec<u32> = rows
                    .iter()
                    .map(|&r| alone[r].decode_ahead().unwrap())
                    .collect();
                // In the schedule's order, which need not be the sessions'.
                let mut slots: Vec<Option<&mut Session>> = together.iter_mut().map(Some).collect();
                let mut picked: Vec<&mut Session> =
                    rows.iter().map(|&r| slots[r].take().unwrap()).collect();
                let got = if rows.len() == 1 {
                    vec![picked[0].decode_ahead().unwrap()]
                } else {
                    batch.decode_ahead(&mut picked).unwrap()
                };
                assert_eq!(got, want, "{preset} {name}: step {step} rows {rows:?}");
            }
            for (i, (a, t)) in alone.iter_mut().zip(&mut together).enumerate() {
                assert_eq!(a.history(), t.history(), "{preset} {name}: session {i}");
                assert_eq!(a.position(), t.position());
                a.discard_ahead();
                t.discard_ahead();
                let (la, lt) = (a.logits().unwrap(), t.logits().unwrap());
                assert_close(&format!("{preset} {name} logits {i}"), &lt, &la, 1e-4, 1e-3);
            }
        }
    }
}

#[test]
fn a_batch_refuses_what_it_cannot_step() {
    let Some(model) = model("tiny-qwen35moe", Recording::Adapter) else {
        return;
    };
    let mut batch = DecodeBatch::new(model.clone(), 2, OPTIONS.context).unwrap();
    let mut sessions = started(&model, Sampling::greedy());
    let (first, rest) = sessions.split_at_mut(1);
    let mut three: Vec<&mut Session> = vec![&mut first[0]];
    three.extend(rest.iter_mut());
    let e = batch.decode_ahead(&mut three).unwrap_err().to_string();
    assert!(e.contains("1 to 2"), "{e}");
    let mut no_draw = Session::new(model.clone(), OPTIONS).unwrap();
    no_draw.prefill(PROMPTS[1]).unwrap();
    let mut pair: Vec<&mut Session> = vec![&mut first[0], &mut no_draw];
    let e = batch.decode_ahead(&mut pair).unwrap_err().to_string();
    assert!(e.contains("no token drawn ahead"), "{e}");
    // Nothing was submitted: the first session steps on alone as if untouched.
    assert_eq!(first[0].position() as usize, PROMPTS[0].len());
    first[0].decode_ahead().unwrap();
}

/// Rows of a batched step share barriers: their feeds, attention and delta-rule dispatches,
/// logits copies and draws are recorded stage by stage with one barrier a stage, so a third
/// row adds none, where ordering whole buffers put about 7 between every two rows of the
/// tiny models. Where steps are not recorded directly there is no count. Steps of the same
/// sessions are then replayed, not recorded again.
#[test]
fn the_rows_of_a_batched_step_share_their_barriers() {
    let Some(model) = model("tiny-qwen35moe", Recording::Adapter) else {
        return;
    };
    let direct = model.ctx.direct.is_some();
    let mut batch = DecodeBatch::new(model.clone(), 4, OPTIONS.context).unwrap();
    let mut sessions = started(&model, Sampling::greedy());
    let mut barriers = Vec::new();
    for rows in [2, 3] {
        let mut picked: Vec<&mut Session> = sessions.iter_mut().take(rows).collect();
        batch.decode_ahead(&mut picked).unwrap();
        barriers.push(batch.step_barriers());
    }
    match (barriers[0], barriers[1]) {
        (Some(two), Some(three)) => {
            assert!(direct);
            assert!(three <= two, "2 rows: {two} barriers, 3 rows: {three}");
        }
        (None, None) => assert!(!direct),
        other => panic!("barriers {other:?}"),
    }
    // Three more steps of the same sessions, each a position further within its first
    // split-KV chunk: the same commands, replayed.
    for _ in 0..3 {
        let mut picked: Vec<&mut Session> = sessions.iter_mut().take(3).collect();
        batch.decode_ahead(&mut picked).unwrap();
    }
    let expect = if direct { (2, 3) } else { (0, 0) };
    assert_eq!(batch.step_replays(), expect, "steps (recorded, replayed)");
}

/// A batch lets go of a dropped session: its plans bind the session's caches and state, and
/// the plan of a set that held it is dropped at the next step, where it would otherwise stay
/// among the last eight plans built.
#[test]
fn a_batch_drops_the_plans_of_a_dropped_session() {
    let Some(model) = model("tiny-qwen35moe", Recording::Adapter) else {
        return;
    };
    let mut batch = DecodeBatch::new(model.clone(), 4, OPTIONS.context).unwrap();
    let mut sessions = started(&model, Sampling::greedy());
    let mut all: Vec<&mut Session> = sessions.iter_mut().collect();
    batch.decode_ahead(&mut all).unwrap();
    let mut pair: Vec<&mut Session> = sessions.iter_mut().take(2).collect();
    batch.decode_ahead(&mut pair).unwrap();
    assert_eq!(batch.plans_kept(), 2);
    drop(sessions.pop());
    let mut pair: Vec<&mut Session> = sessions.iter_mut().take(2).collect();
    batch.decode_ahead(&mut pair).unwrap();
    assert_eq!(
        batch.plans_kept(),
        1,
        "the plan of all three sessions outlived one of them"
    );
    // Its descriptor sets wait for the steps in flight rather than draining the GPU, and are
    // all freed once the work is done.
    assert_bindings_freed_once_idle(&model);
}
