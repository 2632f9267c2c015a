//! `shaders/gdn/` against `model::reference::gdn`: the causal conv (with SiLU) and the gated
//! delta rule, for decode (1 token) and prefill blocks (63, 64, 65 tokens), state carried
//! across calls, head geometries with 2 and 3 value heads per key head.

use qwen_wgpu::loader::config::GdnConfig;
use qwen_wgpu::model::reference::gdn::{causal_conv1d, delta_rule, DeltaRuleInputs};
use qwen_wgpu::model::reference::norm::silu;
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::gdn;
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer};
use qwen_wgpu::runtime::GpuContext;

use crate::common::{assert_close, for_each_variant, gpu_or_skip, run_dispatches};

fn random(n: usize, scale: f32, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| scale * rng.symmetric_f32()).collect()
}

fn buf(gpu: &GpuContext, v: &[f32]) -> wgpu::Buffer {
    storage_buffer(gpu, "t", bytemuck::cast_slice(v))
}

/// f32 on both sides, the same products in another order: atol 1e-6, rtol 1e-5
/// (SiLU uses the GPU's exp).
#[test]
fn causal_conv1d_matches_reference() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(11);
    // No reduction in this kernel: one variant covers it.
    for (channels, taps) in [(7, 4), (64, 4), (200, 2), (130, 8)] {
        let w = random(channels * taps, 0.5, &mut rng);
        let state0 = random((taps - 1) * channels, 1.0, &mut rng);
        let (wb, state) = (buf(&gpu, &w), buf(&gpu, &state0));
        let mut ref_state = state0.clone();
        // Calls in sequence carry the state: decode steps and prefill blocks mixed.
        for n_tokens in [1, 63, 64, 65, 1] {
            let x = random(n_tokens * channels, 2.0, &mut rng);
            let (xb, out) = (buf(&gpu, &x), f32_buffer(&gpu, "out", n_tokens * channels));
            let shape = gdn::ConvShape {
                channels: channels as u32,
                n_tokens: n_tokens as u32,
                taps: taps as u32,
            };
            let io = gdn::CausalConv1dIo {
                x: &xb,
                w: &wb,
                out: &out,
                state: &state,
            };
            let d = gdn::causal_conv1d(&gpu, &cache, shape, io).unwrap();
            run_dispatches(&gpu, &[&d]);
            let expect: Vec<f32> = causal_conv1d(&x, &w, &mut ref_state, channels, taps)
                .into_iter()
                .map(silu)
                .collect();
            let what = format!("conv {channels}x{taps}, {n_tokens} tokens");
            assert_close(
                &what,
                &read_f32(&gpu, &out, n_tokens * channels).unwrap(),
                &expect,
                1e-6,
                1e-5,
            );
            assert_close(
                &format!("{what} state"),
                &read_f32(&gpu, &state, ref_state.len()).unwrap(),
                &ref_state,
                0.0,
                0.0,
            );
        }
    }
    let dummy = f32_buffer(&gpu, "d", 4);
    let shape = gdn::ConvShape {
        channels: 1,
        n_tokens: 1,
        taps: 9,
    };
    let io = gdn::CausalConv1dIo {
        x: &dummy,
        w: &dummy,
        out: &dummy,
        state: &dummy,
    };
    assert!(gdn::causal_conv1d(&gpu, &cache, shape, io).is_err());
}

/// The recurrence compounds rounding over the tokens; f32 on both sides with the same
/// operations grouped differently (q/k normalisation applied to the sums): atol 2e-5,
/// rtol 1e-4 on outputs and states of unit scale, after up to 194 tokens.
#[test]
fn delta_rule_matches_reference() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(12);
    for_each_variant(&mut gpu, |gpu| delta_rule_cases(gpu, &cache, &mut rng));
}

fn delta_rule_cases(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    let geometries = [
        (2, 4, 16, 16),   // the tiny models: 2 v heads per k head
        (2, 6, 16, 40),   // 3 per k head, d_v not a multiple of the 32-column chunk
        (1, 2, 128, 128), // Qwen3.5's head dims
    ];
    for (nk, nv, dk, dv) in geometries {
        let g = GdnConfig {
            n_k_heads: nk,
            n_v_heads: nv,
            d_k: dk,
            d_v: dv,
            conv_kernel: 4,
        };
        let channels = g.conv_channels() as usize;
        let (nv_, dk_, dv_) = (nv as usize, dk as usize, dv as usize);
        let dt_bias = random(nv_, 0.5, rng);
        let a: Vec<f32> = random(nv_, 1.0, rng).iter().map(|u| -u.exp()).collect();
        let state0 = random(nv_ * dk_ * dv_, 0.1, rng);
        let (dtb, ab, state) = (buf(gpu, &dt_bias), buf(gpu, &a), buf(gpu, &state0));
        let mut ref_state = state0.clone();
        for n_tokens in [1, 63, 64, 65, 1] {
            let conv: Vec<f32> = random(n_tokens * channels, 2.0, rng)
                .into_iter()
                .map(silu)
                .collect();
            let beta = random(n_tokens * nv_, 3.0, rng);
            let alpha = random(n_tokens * nv_, 2.0, rng);
            let (cb, bb, alb) = (buf(gpu, &conv), buf(gpu, &beta), buf(gpu, &alpha));
            let out = f32_buffer(gpu, "o", n_tokens * nv_ * dv_);
            let io = gdn::DeltaRuleIo {
                conv_out: &cb,
                beta_raw: &bb,
                alpha: &alb,
                dt_bias: &dtb,
                a_neg: &ab,
                out: &out,
                state: &state,
            };
            let d = gdn::delta_rule(gpu, cache, &g, n_tokens as u32, 1e-6, io).unwrap();
            run_dispatches(gpu, &[&d]);
            let inputs = DeltaRuleInputs {
                conv_out: &conv,
                beta_raw: &beta,
                alpha: &alpha,
                dt_bias: &dt_bias,
                a: &a,
            };
            let expect = delta_rule(&g, inputs, 1e-6, &mut ref_state);
            let what = format!("delta rule nk {nk} nv {nv} dk {dk} dv {dv}, {n_tokens} tokens");
            assert_close(
                &what,
                &read_f32(gpu, &out, expect.len()).unwrap(),
                &expect,
                2e-5,
                1e-4,
            );
            assert_close(
                &format!("{what} state"),
                &read_f32(gpu, &state, ref_state.len()).unwrap(),
                &ref_state,
                2e-5,
                1e-4,
            );
        }
    }
}
