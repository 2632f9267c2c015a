//! `shaders/sample/argmax.wgsl`: the exact index of the largest logit (ties to the lowest),
//! over a 248k vocabulary, for any length.

use qwen_wgpu::model::reference::sample::sample_top_k_top_p;
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::sample::{
    argmax_partials_bytes, top_k_partials_bytes, Argmax, TopKSampler,
};
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer};

use crate::common::{gpu_or_skip, run_dispatches};

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
        let am = Argmax::new(&gpu, &cache, n as u32, &lb, &partials, &token).unwrap();
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
        let mut sampler =
            TopKSampler::new(&gpu, &cache, n as u32, k, &lb, &partials, &token).unwrap();
        for (temperature, top_p) in [(1.0f32, 1.0f32), (0.7, 0.9), (1.5, 0.5), (0.2, 0.95)] {
            for _ in 0..4 {
                let u = rng.unit_f32();
                sampler.set_draw(&gpu.queue, temperature, top_p, u).unwrap();
                run_dispatches(&gpu, &[&sampler.partial, &sampler.sample]);
                let got = read_f32(&gpu, &token, 1).unwrap()[0].to_bits();
                let expect = sample_top_k_top_p(&logits, k as usize, top_p, temperature, u);
                assert_eq!(
                    got, expect,
                    "n {n} k {k} T {temperature} top_p {top_p} u {u}"
                );
            }
        }
    }
    let dummy = f32_buffer(&gpu, "d", 4);
    assert!(TopKSampler::new(&gpu, &cache, 100, 65, &dummy, &dummy, &dummy).is_err());
}
