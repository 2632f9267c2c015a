//! `shaders/sample/`: argmax, the exact index of the largest logit (ties to the lowest),
//! over a 248k vocabulary, for any length.

use qwen_wgpu::model::reference::sample::{apply_penalties, sample_top_k_top_p, Draw, Penalties};
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::sample::{
    argmax_partials_bytes, top_k_partials_bytes, Argmax, RepetitionPenalty, SampleBuffers,
    TopKSampler,
};
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer};

use crate::common::{assert_close, gpu_or_skip, run_dispatches};

#[test]
fn argmax_matches_reference() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(51);
    for n in [1usize, 263, 4096, 4097, 248_320] {
        let mut logits: Vec<f32> = (0..n).map(|_| 10.0 * rng.symmetric_f32()).collect();
        // A tie for the maximum: the lower index wins, as in the reference's argmax.
        let hi = 1000.0;
        let a = rng.below(n as u64) as usize;
        let b = rng.below(n as u64) as usize;
        logits[a] = hi;
        logits[b] = hi;
        let expect = a.min(b) as u32;
        let lb = storage_buffer(&gpu, "logits", bytemuck::cast_slice(&logits));
        let partials = f32_buffer(
            &gpu,
            "partials",
            (argmax_partials_bytes(n as u32) / 4) as usize,
        );
        let token = f32_buffer(&gpu, "token", 1);
        let b = SampleBuffers {
            logits: &lb,
            partials: &partials,
            token: &token,
        };
        let am = Argmax::new(&gpu, &cache, n as u32, b).unwrap();
        run_dispatches(&gpu, &[&am.partial, &am.reduce]);
        let got = read_f32(&gpu, &token, 1).unwrap()[0].to_bits();
        assert_eq!(got, expect, "argmax of {n} logits");
    }
}

/// The GPU's choice for given (temperature, top_p, u) is the reference's: candidates and
/// their order are exact; the weights use the GPU's exp, which can only matter if u lands
/// within an ulp of a boundary (not for these draws).
#[test]
fn top_k_top_p_sampling_matches_reference() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(52);
    for (n, k) in [(263usize, 40u32), (10_000, 64), (248_320, 40), (100, 1)] {
        let logits: Vec<f32> = (0..n).map(|_| 8.0 * rng.symmetric_f32()).collect();
        let lb = storage_buffer(&gpu, "logits", bytemuck::cast_slice(&logits));
        let partials = f32_buffer(
            &gpu,
            "partials",
            (top_k_partials_bytes(n as u32, k) / 4) as usize,
        );
        let token = f32_buffer(&gpu, "token", 1);
        let b = SampleBuffers {
            logits: &lb,
            partials: &partials,
            token: &token,
        };
        let mut sampler = TopKSampler::new(&gpu, &cache, n as u32, k, b).unwrap();
        let settings = [
            (1.0f32, 1.0f32, 0.0f32),
            (0.7, 0.9, 0.0),
            (1.5, 0.5, 0.0),
            (0.2, 0.95, 0.0),
            (1.0, 1.0, 0.05),
            (0.8, 0.95, 0.3),
        ];
        for (temperature, top_p, min_p) in settings {
            for _ in 0..4 {
                let d = Draw {
                    temperature,
                    top_p,
                    min_p,
                    u: rng.unit_f32(),
                };
                sampler.set_draw(&gpu.queue, &d).unwrap();
                run_dispatches(&gpu, &[&sampler.partial, &sampler.sample]);
                let got = read_f32(&gpu, &token, 1).unwrap()[0].to_bits();
                let expect = sample_top_k_top_p(&logits, k as usize, &d);
                assert_eq!(got, expect, "n {n} k {k} {d:?}");
            }
        }
    }
    let dummy = f32_buffer(&gpu, "d", 4);
    let b = SampleBuffers {
        logits: &dummy,
        partials: &dummy,
        token: &dummy,
    };
    assert!(TopKSampler::new(&gpu, &cache, 100, 65, b).is_err());
}

/// The penalties touch exactly the distinct recent tokens (duplicates once, counted for the
/// frequency penalty; ids past the vocabulary ignored), by the reference's rule.
#[test]
fn repetition_penalty_matches_reference() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(53);
    let n = 1000usize;
    let logits: Vec<f32> = (0..n).map(|_| 4.0 * rng.symmetric_f32()).collect();
    let recent: Vec<u32> = (0..200)
        .map(|i| {
            if i % 7 == 0 {
                5000
            } else {
                rng.below(150) as u32
            }
        })
        .collect();
    let cases = [
        (1.3f32, 0.0f32, 0.0f32, 200usize),
        (0.8, 0.0, 0.0, 17),
        (1.1, 0.0, 0.0, 0),
        (1.0, 0.5, 0.25, 200),
        (1.2, -0.3, 1.5, 60),
    ];
    for (repeat, presence, frequency, used) in cases {
        let penalties = Penalties {
            repeat,
            presence,
            frequency,
        };
        let lb = storage_buffer(&gpu, "logits", bytemuck::cast_slice(&logits));
        let rb = storage_buffer(&gpu, "recent", bytemuck::cast_slice(&recent));
        let mut p = RepetitionPenalty::new(&gpu, &cache, n as u32, 200, &lb, &rb).unwrap();
        p.set(&gpu.queue, penalties, used as u32).unwrap();
        run_dispatches(&gpu, &[&p.dispatch]);
        let mut expect = logits.clone();
        apply_penalties(&mut expect, &recent[..used], penalties);
        let got = read_f32(&gpu, &lb, n).unwrap();
        // Exact but for the subtraction's rounding of c * frequency + presence.
        assert_close(
            &format!("{penalties:?} over {used}"),
            &got,
            &expect,
            1e-6,
            1e-6,
        );
    }
}
