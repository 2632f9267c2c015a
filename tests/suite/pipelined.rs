//! Pipelined decode (`Session::decode_ahead`) against the unpipelined loop
//! (`Session::decode`): the same tokens, greedy and seeded with and without the repetition
//! penalty, with both decode plans; and after either way of stopping, the state the next
//! turn finds is the unpipelined one.

use qwen_wgpu::error::Error;
use qwen_wgpu::loader::quant::GgmlType;
use qwen_wgpu::model::algebra::KvDtype;
use qwen_wgpu::runtime::ops::linear::matvec::MIN_GRID;
use qwen_wgpu::runtime::{Sampling, Session, SessionOptions};

use crate::common::{gpu_or_skip, load_tiny};

const OPTIONS: SessionOptions = SessionOptions {
    context: 64,
    ubatch: 8,
    kv_dtype: KvDtype::F32,
    all_logits: false,
};

/// Two sessions on one model of `preset` (q8_0 weights), with the GPU's or the CPU
/// device's decode plan.
fn two_sessions(preset: &str, gpu_forms: bool) -> Option<(Session, Session)> {
    let mut gpu = gpu_or_skip()?;
    gpu.features.fused_decode = gpu_forms;
    gpu.features.matvec_min_grid = gpu_forms.then_some(MIN_GRID);
    let model = load_tiny(preset, GgmlType::Q8_0, gpu, &OPTIONS);
    Some((
        Session::new(model.clone(), OPTIONS).unwrap(),
        Session::new(model, OPTIONS).unwrap(),
    ))
}

fn samplings() -> [(&'static str, Sampling); 3] {
    [
        ("greedy", Sampling::greedy()),
        ("seeded", Sampling::default()),
        (
            "penalised over 6 tokens",
            Sampling {
                repeat_penalty: 1.5,
                repeat_last_n: 6,
                ..Sampling::default()
            },
        ),
    ]
}

const PROMPT: [u32; 11] = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9];

/// `n` tokens the unpipelined way: the first from the prompt's logits, then one a step.
fn unpipelined(s: &mut Session, n: usize) -> Vec<u32> {
    s.prefill(&PROMPT).unwrap();
    let mut tokens = vec![s.sample().unwrap()];
    while tokens.len() < n {
        tokens.push(s.decode(*tokens.last().unwrap()).unwrap());
    }
    tokens
}

/// `n` tokens pipelined, the last read without being fed (the generation loop at a limit).
fn pipelined(s: &mut Session, n: usize) -> Vec<u32> {
    s.prefill(&PROMPT).unwrap();
    s.sample_ahead().unwrap();
    let mut tokens: Vec<u32> = (1..n).map(|_| s.decode_ahead().unwrap()).collect();
    tokens.push(s.read_ahead().unwrap());
    assert!(!s.has_ahead());
    tokens
}

#[test]
fn pipelined_decode_draws_the_unpipelined_tokens_and_leaves_the_same_state() {
    for (preset, gpu_forms) in [
        ("tiny-qwen35moe", false),
        ("tiny-qwen35moe", true),
        ("tiny-qwen35", true),
    ] {
        let Some((mut a, mut b)) = two_sessions(preset, gpu_forms) else {
            return;
        };
        for (what, sampling) in samplings() {
            let what = format!("{preset}, GPU plan {gpu_forms}, {what}");
            for s in [&mut a, &mut b] {
                s.reset();
                s.set_sampling(sampling, 11).unwrap();
            }
            let (ta, tb) = (unpipelined(&mut a, 20), pipelined(&mut b, 20));
            assert_eq!(ta, tb, "{what}: tokens");
            assert_eq!(a.history(), b.history(), "{what}: fed tokens");
            assert_eq!(a.position(), PROMPT.len() as u32 + 19, "{what}");
            assert_eq!(b.position(), a.position(), "{what}: position");
            // The same kernels on the same inputs: the same bits.
            assert_eq!(
                a.logits().unwrap(),
                b.logits().unwrap(),
                "{what}: last logits"
            );
            // The last token is pending in both: the next turn feeds it.
            let turn = [*ta.last().unwrap(), 4, 2];
            a.prefill(&turn).unwrap();
            b.prefill(&turn).unwrap();
            assert_eq!(
                a.sample().unwrap(),
                b.sample().unwrap(),
                "{what}: next turn"
            );
        }
    }
}

/// A stop the loop cannot foresee (an end token, Ctrl-C) comes after the step feeding the
/// last token was submitted: that token stays fed and the draw after it is dropped, rng
/// included, so the session equals an unpipelined one that fed the same token.
#[test]
fn a_stop_after_the_step_feeding_a_token_keeps_it_fed_and_drops_the_next_draw() {
    let Some((mut a, mut b)) = two_sessions("tiny-qwen35moe", true) else {
        return;
    };
    for (what, sampling) in samplings() {
        for s in [&mut a, &mut b] {
            s.reset();
            s.set_sampling(sampling, 5).unwrap();
        }
        // Unpipelined: 7 tokens drawn, the 7th not fed.
        a.prefill(&PROMPT).unwrap();
        let mut token = a.sample().unwrap();
        let mut drawn = vec![token];
        for _ in 0..6 {
            token = a.decode(token).unwrap();
            drawn.push(token);
        }
        // Pipelined: the 7th token read by decode_ahead, which fed it; then a stop.
        b.prefill(&PROMPT).unwrap();
        b.sample_ahead().unwrap();
        let read: Vec<u32> = (0..7).map(|_| b.decode_ahead().unwrap()).collect();
        b.discard_ahead();
        assert_eq!(read, drawn, "{what}: tokens");
        // a's next turn starts with its pending 7th token; a one-token prefill runs the
        // decode plan, as b's step feeding it did.
        a.prefill(&[token]).unwrap();
        let turn = [4, 2, 8];
        a.prefill(&turn).unwrap();
        b.prefill(&turn).unwrap();
        assert_eq!(a.history(), b.history(), "{what}: fed tokens");
        assert_eq!(a.logits().unwrap(), b.logits().unwrap(), "{what}: logits");
        // a drew 6 times from the rng after the prompt's draw; b too, its 7th given back.
        let (mut na, mut nb) = (a.sample().unwrap(), b.sample().unwrap());
        for _ in 0..4 {
            assert_eq!(na, nb, "{what}: tokens of the next turn");
            na = a.decode(na).unwrap();
            nb = b.decode(nb).unwrap();
        }
    }
}

#[test]
fn steps_out_of_order_with_one_ahead_are_refused() {
    let Some((mut s, _)) = two_sessions("tiny-qwen35moe", true) else {
        return;
    };
    let refused = |r: Result<(), Error>, what: &str| {
        let e = r.expect_err(what).to_string();
        assert!(e.contains("ahead"), "{what}: {e}");
    };
    refused(
        s.decode_ahead().map(drop),
        "decode_ahead before sample_ahead",
    );
    refused(s.read_ahead().map(drop), "read_ahead before sample_ahead");
    s.prefill(&PROMPT).unwrap();
    s.sample_ahead().unwrap();
    refused(s.prefill(&[1]), "prefill with a draw in flight");
    refused(s.decode(1).map(drop), "decode with a draw in flight");
    refused(s.sample().map(drop), "sample with a draw in flight");
    refused(s.sample_ahead(), "a second sample_ahead");
    refused(
        s.set_sampling(Sampling::default(), 3),
        "new sampling with a draw in flight",
    );
    let t = s.decode_ahead().unwrap();
    s.reset();
    assert!(!s.has_ahead(), "reset drops the draw in flight");
    s.prefill(&PROMPT).unwrap();
    assert_eq!(s.sample().unwrap(), t, "after the reset");
}

/// The last step before the context is full cannot be fed: decode_ahead says so and keeps
/// the draw readable.
#[test]
fn decode_ahead_at_a_full_context_is_refused_and_the_draw_stays_readable() {
    let Some((mut s, mut u)) = two_sessions("tiny-qwen35", false) else {
        return;
    };
    let prompt: Vec<u32> = (0..OPTIONS.context - 2).map(|i| i % 40).collect();
    s.prefill(&prompt).unwrap();
    s.sample_ahead().unwrap();
    s.decode_ahead().unwrap();
    s.decode_ahead().unwrap();
    assert_eq!(s.position(), OPTIONS.context);
    let e = s.decode_ahead().expect_err("past the context");
    assert!(matches!(e, Error::ContextFull { .. }), "{e}");
    let last = s.read_ahead().unwrap();
    u.prefill(&prompt).unwrap();
    let t = u.sample().unwrap();
    let t = u.decode(t).unwrap();
    assert_eq!(u.decode(t).unwrap(), last);
}
