//! Resuming a sequence from a snapshot of its state (`Session::snapshot` / `restore`), as
//! the server's prompt cache does: the logits after resuming equal those of the same tokens
//! prefilled from nothing, for every architecture; a snapshot of another history is refused;
//! a model without recurrent state drops a suffix without one (`Session::truncate`).

use qwen_wgpu::loader::quant::GgmlType;
use qwen_wgpu::model::algebra::KvDtype;
use qwen_wgpu::runtime::{Session, SessionOptions};

use crate::common::{assert_close, gpu_or_skip, load_tiny, TINY_PRESETS};

const OPTIONS: SessionOptions = SessionOptions {
    context: 128,
    ubatch: 16,
    kv_dtype: KvDtype::F16,
    all_logits: false,
};

const SHARED: [u32; 21] = [
    5, 9, 14, 2, 33, 8, 71, 3, 3, 40, 12, 6, 19, 27, 1, 4, 50, 7, 8, 9, 10,
];
const FIRST_TAIL: [u32; 9] = [60, 61, 62, 63, 64, 65, 66, 67, 68];
const SECOND_TAIL: [u32; 5] = [90, 12, 13, 44, 45];

fn sessions(preset: &str) -> Option<(Session, Session)> {
    let model = load_tiny(preset, GgmlType::F32, gpu_or_skip()?, &OPTIONS);
    Some((
        Session::new(model.clone(), OPTIONS).unwrap(),
        Session::new(model, OPTIONS).unwrap(),
    ))
}

#[test]
fn a_restored_snapshot_continues_like_a_cold_prefill() {
    for preset in TINY_PRESETS {
        let Some((mut warm, mut cold)) = sessions(preset) else {
            return;
        };
        // The shared start (over one step), a snapshot, another continuation, then back.
        warm.prefill(&SHARED).unwrap();
        let snapshot = warm.snapshot().unwrap();
        assert_eq!(snapshot.pos() as usize, SHARED.len());
        warm.prefill(&FIRST_TAIL).unwrap();
        warm.sample().unwrap();
        warm.restore(&snapshot).unwrap();
        assert_eq!(warm.history(), &SHARED[..]);
        assert!(
            warm.logits().is_err(),
            "{preset}: no logits right after a restore"
        );
        warm.prefill(&SECOND_TAIL).unwrap();
        let whole: Vec<u32> = SHARED.iter().chain(&SECOND_TAIL).copied().collect();
        cold.prefill(&whole).unwrap();
        assert_eq!(warm.history(), cold.history());
        let (w, c) = (warm.logits().unwrap(), cold.logits().unwrap());
        assert_close(&format!("{preset} resumed logits"), &w, &c, 1e-4, 1e-3);
        // The same snapshot again, after more tokens: still the shared start.
        warm.restore(&snapshot).unwrap();
        assert_eq!(warm.position() as usize, SHARED.len());
        // A snapshot of a history this session does not start with is refused.
        let mut other = Session::new(warm.model().clone(), OPTIONS).unwrap();
        other.prefill(&FIRST_TAIL).unwrap();
        let foreign = other.snapshot().unwrap();
        let e = warm.restore(&foreign).unwrap_err().to_string();
        assert!(e.contains("not of this sequence"), "{preset}: {e}");
        // Models with recurrent state cannot drop a suffix without a snapshot.
        let hybrid = warm.state().recurrent_bytes() > 0;
        assert_eq!(warm.truncate(3).unwrap(), !hybrid, "{preset}");
        if !hybrid {
            // Attention only: back to 3 tokens, then the rest, equals a cold prefill of them.
            warm.prefill(&SECOND_TAIL).unwrap();
            let mut fresh = Session::new(warm.model().clone(), OPTIONS).unwrap();
            let short: Vec<u32> = SHARED[..3].iter().chain(&SECOND_TAIL).copied().collect();
            fresh.prefill(&short).unwrap();
            let (w, f) = (warm.logits().unwrap(), fresh.logits().unwrap());
            assert_close(&format!("{preset} truncated logits"), &w, &f, 1e-4, 1e-3);
        }
    }
}
