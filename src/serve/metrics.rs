//! Counters the server keeps and `GET /metrics` shows in Prometheus' text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    pub requests_ok: AtomicU64,
    pub requests_failed: AtomicU64,
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens resumed from the prompt cache instead of prefilled.
    pub cached_tokens: AtomicU64,
    /// Requests that resumed from the prompt cache.
    pub cache_hits: AtomicU64,
    pub completion_tokens: AtomicU64,
    /// Requests waiting for a slot.
    pub queued: AtomicU64,
    /// Slots running a request.
    pub busy_slots: AtomicU64,
    pub snapshots: AtomicU64,
    pub snapshot_bytes: AtomicU64,
    /// Tokens all slots generated over the last engine rounds, and the seconds they took.
    recent: Mutex<(f64, f64)>,
}

/// The window the decode rate is averaged over.
const RATE_WINDOW_SECONDS: f64 = 10.0;

impl Metrics {
    /// Adds one engine round: `tokens` generated in `seconds`.
    pub fn record_round(&self, tokens: u64, seconds: f64) {
        if let Ok(mut recent) = self.recent.lock() {
            let (t, s) = *recent;
            // Past the window, older rounds count for proportionally less.
            let keep = if s + seconds > RATE_WINDOW_SECONDS {
                ((RATE_WINDOW_SECONDS - seconds).max(0.0)) / s.max(f64::MIN_POSITIVE)
            } else {
                1.0
            };
            *recent = (t * keep + tokens as f64, s * keep + seconds);
        }
    }

    /// Generated tokens a second over the recent rounds, all slots together.
    pub fn decode_rate(&self) -> f64 {
        match self.recent.lock() {
            Ok(r) if r.1 > 0.0 => r.0 / r.1,
            _ => 0.0,
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self, slots: usize) -> String {
        let get = |c: &AtomicU64| c.load(Relaxed).to_string();
        let rows = [
            (
                "requests_total",
                "counter",
                "Generation requests answered in full.",
                get(&self.requests_ok),
            ),
            (
                "requests_failed_total",
                "counter",
                "Generation requests that ended in an error.",
                get(&self.requests_failed),
            ),
            (
                "prompt_tokens_total",
                "counter",
                "Prompt tokens of all requests.",
                get(&self.prompt_tokens),
            ),
            (
                "prompt_tokens_cached_total",
                "counter",
                "Prompt tokens resumed from the prompt cache, not prefilled.",
                get(&self.cached_tokens),
            ),
            (
                "prompt_cache_hits_total",
                "counter",
                "Requests that resumed from the prompt cache.",
                get(&self.cache_hits),
            ),
            (
                "completion_tokens_total",
                "counter",
                "Tokens generated.",
                get(&self.completion_tokens),
            ),
            (
                "decode_tokens_per_second",
                "gauge",
                "Tokens generated a second, all slots together, over the last seconds.",
                format!("{:.3}", self.decode_rate()),
            ),
            (
                "queue_depth",
                "gauge",
                "Requests waiting for a slot.",
                get(&self.queued),
            ),
            (
                "slots_busy",
                "gauge",
                "Slots running a request.",
                get(&self.busy_slots),
            ),
            ("slots", "gauge", "Slots (--parallel).", slots.to_string()),
            (
                "prompt_cache_snapshots",
                "gauge",
                "Recurrent-state snapshots kept.",
                get(&self.snapshots),
            ),
            (
                "prompt_cache_bytes",
                "gauge",
                "VRAM the kept snapshots take.",
                get(&self.snapshot_bytes),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP qwen_wgpu_{name} {help}");
            let _ = writeln!(out, "# TYPE qwen_wgpu_{name} {kind}");
            let _ = writeln!(out, "qwen_wgpu_{name} {value}");
        }
        out
    }
}
