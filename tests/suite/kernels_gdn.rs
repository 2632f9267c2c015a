//! `shaders/gdn/` against `model::reference::gdn`: the causal conv (with SiLU) and the gated
//! delta rule, for decode (1 token) and prefill blocks (63, 64, 65 tokens), state carried
//! across calls, head geometries with 2 and 3 value heads per key head; the two as one
//! decode dispatch (`conv_delta_rule`); and the chunked rule of prompt steps
//! (`delta_chunk_wy`, `delta_chunk_state`) against its reference and the sequential one.

use qwen_wgpu::loader::config::GdnConfig;
use qwen_wgpu::model::activations::kernel_sizes::DELTA_CHUNK;
use qwen_wgpu::model::reference::gdn::{
    causal_conv1d, delta_chunk_factors, delta_rule, delta_rule_chunked, DeltaRuleInputs,
};
use qwen_wgpu::model::reference::norm::silu;
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::gdn;
use qwen_wgpu::runtime::ops::step::write_step;
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

/// The conv's ring (`GdnConfig::conv_ring_len`) holding `linear`, the reference's K - 1
/// inputs oldest first, before position `pos`; the row the next token writes holds NaN, so
/// a kernel reading it fails the comparison.
fn ring_of(linear: &[f32], pos: usize, taps: usize, channels: usize) -> Vec<f32> {
    let mut ring = vec![f32::NAN; taps * channels];
    for i in 0..taps - 1 {
        let row = (pos + 1 + i) % taps;
        ring[row * channels..(row + 1) * channels]
            .copy_from_slice(&linear[i * channels..(i + 1) * channels]);
    }
    ring
}

/// The reference's K - 1 inputs before position `pos`, oldest first, from the conv's ring.
fn linear_of(ring: &[f32], pos: usize, taps: usize, channels: usize) -> Vec<f32> {
    (0..taps - 1)
        .flat_map(|i| {
            let row = (pos + 1 + i) % taps;
            ring[row * channels..(row + 1) * channels].to_vec()
        })
        .collect()
}

/// f32 on both sides, the same products in another order: atol 1e-6, rtol 1e-5
/// (SiLU uses the GPU's exp). The ring starts at position 10, past its length, so every
/// row's index wraps.
#[test]
fn causal_conv1d_matches_reference() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(11);
    let step = f32_buffer(&gpu, "step", 2);
    // No reduction in this kernel: one variant covers it.
    for (channels, taps) in [(7, 4), (64, 4), (200, 2), (130, 8)] {
        let w = random(channels * taps, 0.5, &mut rng);
        let mut pos = 10;
        let state0 = random((taps - 1) * channels, 1.0, &mut rng);
        let ring = ring_of(&state0, pos, taps, channels);
        let (wb, state) = (buf(&gpu, &w), buf(&gpu, &ring));
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
                step: &step,
            };
            write_step(&gpu.queue, &step, pos as u32, n_tokens as u32);
            let d = gdn::causal_conv1d(&gpu, &cache, shape, io).unwrap();
            run_dispatches(&gpu, &[&d]);
            pos += n_tokens;
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
            let ring = read_f32(&gpu, &state, taps * channels).unwrap();
            assert_close(
                &format!("{what} state"),
                &linear_of(&ring, pos, taps, channels),
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
        step: &dummy,
    };
    assert!(gdn::causal_conv1d(&gpu, &cache, shape, io).is_err());
}

/// The recurrence compounds rounding over the tokens; f32 on both sides with the same
/// operations grouped differently (q/k normalisation applied to the sums): atol 2e-5,
/// rtol 1e-4 on outputs and states of unit scale, after up to 494 tokens. The 300-token
/// step walks past 251 tokens in one dispatch, where lavapipe's subgroup reductions inside
/// the token loop (the q/k norms before block_norms) went wrong.
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
        for n_tokens in [1, 63, 64, 65, 300, 1] {
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

/// The decode step in one dispatch against the composition it fuses, the reference conv
/// (with SiLU) then the reference delta rule: six tokens in a row, the conv ring starting
/// at position 2 (rows before 0 still zero) and at 37, on the delta rule's geometries, the
/// token's inputs and output at rows 0 to 2 of their buffers.
/// Tolerances as the delta rule's: atol 2e-5, rtol 1e-4 on outputs and states; the ring,
/// which only stores inputs, exactly.
#[test]
fn conv_delta_rule_matches_reference() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(13);
    for_each_variant(&mut gpu, |gpu| conv_delta_rule_cases(gpu, &cache, &mut rng));
}

fn conv_delta_rule_cases(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    let geometries = [(2, 4, 16, 16, 4), (2, 6, 16, 40, 3), (1, 2, 128, 128, 4)];
    let step = f32_buffer(gpu, "step", 2);
    for (nk, nv, dk, dv, taps) in geometries {
        for pos0 in [2, 37] {
            let g = GdnConfig {
                n_k_heads: nk,
                n_v_heads: nv,
                d_k: dk,
                d_v: dv,
                conv_kernel: taps,
            };
            let (ch, k) = (g.conv_channels() as usize, taps as usize);
            let (nv_, dk_, dv_) = (nv as usize, dk as usize, dv as usize);
            let conv_w = random(ch * k, 0.5, rng);
            let dt_bias = random(nv_, 0.5, rng);
            let a: Vec<f32> = random(nv_, 1.0, rng).iter().map(|u| -u.exp()).collect();
            // At position 2 the ring has seen positions 0 and 1 only: the rows before are 0.
            let mut ref_conv = random((k - 1) * ch, 1.0, rng);
            let unseen = (k - 1).saturating_sub(pos0) * ch;
            ref_conv[..unseen].fill(0.0);
            let mut ref_delta = random(nv_ * dk_ * dv_, 0.1, rng);
            let ring = ring_of(&ref_conv, pos0, k, ch);
            let (cwb, dtb, ab) = (buf(gpu, &conv_w), buf(gpu, &dt_bias), buf(gpu, &a));
            let (conv_state, state) = (buf(gpu, &ring), buf(gpu, &ref_delta));
            for pos in pos0..pos0 + 6 {
                // The token's inputs and output at row 0, 1 or 2 of their buffers (a batched
                // step's sequence reads its row of the batch's).
                let row = (pos - pos0) % 3;
                let qkv_rows = random((row + 1) * ch, 2.0, rng);
                let beta_rows = random((row + 1) * nv_, 3.0, rng);
                let alpha_rows = random((row + 1) * nv_, 2.0, rng);
                let (qkv, beta, alpha) = (
                    &qkv_rows[row * ch..],
                    &beta_rows[row * nv_..],
                    &alpha_rows[row * nv_..],
                );
                let (qb, bb, alb) = (
                    buf(gpu, &qkv_rows),
                    buf(gpu, &beta_rows),
                    buf(gpu, &alpha_rows),
                );
                let out = f32_buffer(gpu, "o", (row + 1) * nv_ * dv_);
                let io = gdn::ConvDeltaRuleIo {
                    qkv: &qb,
                    conv_w: &cwb,
                    conv_state: &conv_state,
                    step: &step,
                    beta_raw: &bb,
                    alpha: &alb,
                    dt_bias: &dtb,
                    a_neg: &ab,
                    out: &out,
                    state: &state,
                };
                write_step(&gpu.queue, &step, pos as u32, 1);
                let d = gdn::conv_delta_rule(gpu, cache, &g, (1e-6, row as u32), io).unwrap();
                run_dispatches(gpu, &[&d]);
                let conv: Vec<f32> = causal_conv1d(qkv, &conv_w, &mut ref_conv, ch, k)
                    .into_iter()
                    .map(silu)
                    .collect();
                let inputs = DeltaRuleInputs {
                    conv_out: &conv,
                    beta_raw: beta,
                    alpha,
                    dt_bias: &dt_bias,
                    a: &a,
                };
                let expect = delta_rule(&g, inputs, 1e-6, &mut ref_delta);
                let what = format!(
                    "conv + delta rule nk {nk} nv {nv} dk {dk} dv {dv}, position {pos}, row {row}"
                );
                let got = read_f32(gpu, &out, (row + 1) * nv_ * dv_).unwrap();
                assert_close(&what, &got[row * nv_ * dv_..], &expect, 2e-5, 1e-4);
                assert_close(
                    &format!("{what} state"),
                    &read_f32(gpu, &state, ref_delta.len()).unwrap(),
                    &ref_delta,
                    2e-5,
                    1e-4,
                );
                let ring = read_f32(gpu, &conv_state, k * ch).unwrap();
                assert_close(
                    &format!("{what} conv ring"),
                    &linear_of(&ring, pos + 1, k, ch),
                    &ref_conv,
                    0.0,
                    0.0,
                );
            }
        }
    }
    let bad = GdnConfig {
        n_k_heads: 1,
        n_v_heads: 1,
        d_k: 16,
        d_v: 16,
        conv_kernel: 9,
    };
    let d = f32_buffer(gpu, "d", 4);
    let io = gdn::ConvDeltaRuleIo {
        qkv: &d,
        conv_w: &d,
        conv_state: &d,
        step: &d,
        beta_raw: &d,
        alpha: &d,
        dt_bias: &d,
        a_neg: &d,
        out: &d,
        state: &d,
    };
    assert!(gdn::conv_delta_rule(gpu, cache, &bad, (1e-6, 0), io).is_err());
}

/// Random inputs of the delta rule for `t` tokens, as a prompt step sees them.
struct RuleInputs {
    conv: Vec<f32>,
    beta: Vec<f32>,
    alpha: Vec<f32>,
}

impl RuleInputs {
    /// Random inputs whose alpha projection is centred on `alpha_mid`: around 0 the state
    /// decays by e^-1 to e^-8 a token; at -6 by under 5%, as in trained models, so the
    /// chunk's substitution and the carried state weigh in fully.
    fn random(g: &GdnConfig, t: usize, alpha_mid: f32, rng: &mut SplitMix64) -> RuleInputs {
        let nv = g.n_v_heads as usize;
        RuleInputs {
            conv: random(t * g.conv_channels() as usize, 2.0, rng)
                .into_iter()
                .map(silu)
                .collect(),
            beta: random(t * nv, 3.0, rng),
            alpha: random(t * nv, 2.0, rng)
                .into_iter()
                .map(|a| alpha_mid + a)
                .collect(),
        }
    }

    fn view<'a>(&'a self, dt_bias: &'a [f32], a: &'a [f32]) -> DeltaRuleInputs<'a> {
        DeltaRuleInputs {
            conv_out: &self.conv,
            beta_raw: &self.beta,
            alpha: &self.alpha,
            dt_bias,
            a,
        }
    }
}

fn gdn_config((nk, nv, dk, dv): (u32, u32, u32, u32)) -> GdnConfig {
    GdnConfig {
        n_k_heads: nk,
        n_v_heads: nv,
        d_k: dk,
        d_v: dv,
        conv_kernel: 4,
    }
}

/// The tiny models' heads, 3 value heads a key head with d_v not a multiple of the state
/// kernel's 16 columns, and Qwen3.5's 128 x 128.
const CHUNKED_GEOMETRIES: [(u32, u32, u32, u32); 3] =
    [(2, 4, 16, 16), (2, 6, 16, 40), (1, 2, 128, 128)];

/// Prompt steps in a row, the state carried: one token, around a chunk's length, many chunks.
const CHUNKED_STEPS: [usize; 6] = [1, 63, 64, 65, 1000, 1];

/// Fast and slow decay (see [`RuleInputs::random`]).
const ALPHA_MIDS: [f32; 2] = [0.0, -6.0];

fn chunked_cases() -> impl Iterator<Item = ((u32, u32, u32, u32), f32)> {
    CHUNKED_GEOMETRIES
        .into_iter()
        .flat_map(|g| ALPHA_MIDS.map(|a| (g, a)))
}

/// The chunked rule is the sequential one with its sums grouped by chunk: in f32 on the CPU
/// both agree to atol 2e-5, rtol 1e-4 on outputs and states, over 1194 tokens in six steps.
#[test]
fn delta_rule_chunked_equals_delta_rule() {
    let mut rng = SplitMix64::new(14);
    for (geometry, alpha_mid) in chunked_cases() {
        let g = gdn_config(geometry);
        let nv = g.n_v_heads as usize;
        let dt_bias = random(nv, 0.5, &mut rng);
        let a: Vec<f32> = random(nv, 1.0, &mut rng).iter().map(|u| -u.exp()).collect();
        let mut seq_state = random(nv * (g.d_k * g.d_v) as usize, 0.1, &mut rng);
        let mut chunk_state = seq_state.clone();
        for t in CHUNKED_STEPS {
            let x = RuleInputs::random(&g, t, alpha_mid, &mut rng);
            let seq = delta_rule(&g, x.view(&dt_bias, &a), 1e-6, &mut seq_state);
            let chunked = delta_rule_chunked(
                &g,
                x.view(&dt_bias, &a),
                1e-6,
                &mut chunk_state,
                DELTA_CHUNK as usize,
            );
            let what = format!("chunked rule {geometry:?} alpha {alpha_mid}, {t} tokens");
            assert_close(&what, &chunked, &seq, 2e-5, 1e-4);
            assert_close(
                &format!("{what} state"),
                &chunk_state,
                &seq_state,
                2e-5,
                1e-4,
            );
        }
    }
}

/// The chunk factor buffers of a step of `t` tokens.
struct ChunkBuffers {
    w: wgpu::Buffer,
    u: wgpu::Buffer,
    kd: wgpu::Buffer,
    qg: wgpu::Buffer,
    mqk: wgpu::Buffer,
    decay: wgpu::Buffer,
}

impl ChunkBuffers {
    fn new(gpu: &GpuContext, g: &GdnConfig, t: usize) -> ChunkBuffers {
        let chunk = DELTA_CHUNK as usize;
        let rows = t.div_ceil(chunk) * chunk * g.n_v_heads as usize;
        let (dk, dv) = (g.d_k as usize, g.d_v as usize);
        ChunkBuffers {
            w: f32_buffer(gpu, "w", rows * dk),
            u: f32_buffer(gpu, "u", rows * dv),
            kd: f32_buffer(gpu, "kd", rows * dk),
            qg: f32_buffer(gpu, "qg", rows * dk),
            mqk: f32_buffer(gpu, "mqk", rows * chunk),
            decay: f32_buffer(gpu, "decay", rows / chunk),
        }
    }
}

/// Both chunk kernels of one step: the factors, then the state across the chunks.
#[allow(clippy::too_many_arguments)]
fn run_chunked(
    gpu: &GpuContext,
    cache: &PipelineCache,
    g: &GdnConfig,
    t: usize,
    (x, dt_bias, a): (&RuleInputs, &wgpu::Buffer, &wgpu::Buffer),
    c: &ChunkBuffers,
    out: &wgpu::Buffer,
    state: &wgpu::Buffer,
) {
    let (cb, bb, alb) = (buf(gpu, &x.conv), buf(gpu, &x.beta), buf(gpu, &x.alpha));
    let io = gdn::DeltaChunkWyIo {
        conv_out: &cb,
        beta_raw: &bb,
        alpha: &alb,
        dt_bias,
        a_neg: a,
        w: &c.w,
        u: &c.u,
        kd: &c.kd,
        qg: &c.qg,
        mqk: &c.mqk,
        decay: &c.decay,
    };
    let wy = gdn::delta_chunk_wy(gpu, cache, g, t as u32, 1e-6, io).unwrap();
    let io = gdn::DeltaChunkStateIo {
        w: &c.w,
        u: &c.u,
        kd: &c.kd,
        qg: &c.qg,
        mqk: &c.mqk,
        decay: &c.decay,
        out,
        state,
    };
    let st = gdn::delta_chunk_state(gpu, cache, g, t as u32, io).unwrap();
    run_dispatches(gpu, &[&wy, &st]);
}

/// Every factor of every (chunk, value head) of a 130-token step (chunks of 64, 64 and 2
/// tokens, the rows past the last token zero) against the reference's. f32 both sides, the
/// dot products and the substitution summed in other orders: atol 1e-5, rtol 1e-4.
#[test]
fn delta_chunk_wy_matches_reference() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(15);
    let chunk = DELTA_CHUNK as usize;
    let t = 130;
    for (geometry, alpha_mid) in chunked_cases() {
        let g = gdn_config(geometry);
        let (nv, dk, dv) = (g.n_v_heads as usize, g.d_k as usize, g.d_v as usize);
        let dt_bias = random(nv, 0.5, &mut rng);
        let a: Vec<f32> = random(nv, 1.0, &mut rng).iter().map(|u| -u.exp()).collect();
        let x = RuleInputs::random(&g, t, alpha_mid, &mut rng);
        let c = ChunkBuffers::new(&gpu, &g, t);
        let (out, state) = (
            f32_buffer(&gpu, "o", t * nv * dv),
            f32_buffer(&gpu, "s", nv * dk * dv),
        );
        let (dtb, ab) = (buf(&gpu, &dt_bias), buf(&gpu, &a));
        run_chunked(&gpu, &cache, &g, t, (&x, &dtb, &ab), &c, &out, &state);
        let n_chunks = t.div_ceil(chunk);
        let rows = n_chunks * nv * chunk;
        let read = |b: &wgpu::Buffer, len: usize| read_f32(&gpu, b, len).unwrap();
        let (w, u, kd) = (
            read(&c.w, rows * dk),
            read(&c.u, rows * dv),
            read(&c.kd, rows * dk),
        );
        let (qg, mqk) = (read(&c.qg, rows * dk), read(&c.mqk, rows * chunk));
        let decay = read(&c.decay, n_chunks * nv);
        for ci in 0..n_chunks {
            for h in 0..nv {
                let t0 = ci * chunk;
                let span = (t0, chunk.min(t - t0), chunk);
                let r = delta_chunk_factors(&g, x.view(&dt_bias, &a), 1e-6, span, h);
                let at = (ci * nv + h) * chunk;
                let what = format!("factors {geometry:?} alpha {alpha_mid}, chunk {ci} head {h}");
                let rows_of =
                    |m: &[f32], width: usize| m[at * width..(at + chunk) * width].to_vec();
                assert_close(&format!("{what} w"), &rows_of(&w, dk), &r.w, 1e-5, 1e-4);
                assert_close(&format!("{what} u"), &rows_of(&u, dv), &r.u, 1e-5, 1e-4);
                assert_close(&format!("{what} kd"), &rows_of(&kd, dk), &r.kd, 1e-5, 1e-4);
                assert_close(&format!("{what} qg"), &rows_of(&qg, dk), &r.qg, 1e-5, 1e-4);
                assert_close(
                    &format!("{what} mqk"),
                    &rows_of(&mqk, chunk),
                    &r.mqk,
                    1e-5,
                    1e-4,
                );
                let d = decay[ci * nv + h];
                assert_close(&format!("{what} decay"), &[d], &[r.decay], 1e-6, 1e-5);
            }
        }
    }
}

/// Both chunk kernels against the sequential reference rule over prompt steps of 1, 63,
/// 64, 65, 1000 and 1 tokens, the state carried: the same function with its sums grouped by
/// chunk, as `delta_rule_chunked_equals_delta_rule` shows on the CPU. atol 2e-5, rtol 1e-4
/// on outputs and states.
#[test]
fn delta_chunk_state_matches_sequential_reference() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(16);
    for (geometry, alpha_mid) in chunked_cases() {
        let g = gdn_config(geometry);
        let (nv, dk, dv) = (g.n_v_heads as usize, g.d_k as usize, g.d_v as usize);
        let dt_bias = random(nv, 0.5, &mut rng);
        let a: Vec<f32> = random(nv, 1.0, &mut rng).iter().map(|u| -u.exp()).collect();
        let mut ref_state = random(nv * dk * dv, 0.1, &mut rng);
        let (dtb, ab, state) = (buf(&gpu, &dt_bias), buf(&gpu, &a), buf(&gpu, &ref_state));
        for t in CHUNKED_STEPS {
            let x = RuleInputs::random(&g, t, alpha_mid, &mut rng);
            let c = ChunkBuffers::new(&gpu, &g, t);
            let out = f32_buffer(&gpu, "o", t * nv * dv);
            run_chunked(&gpu, &cache, &g, t, (&x, &dtb, &ab), &c, &out, &state);
            let expect = delta_rule(&g, x.view(&dt_bias, &a), 1e-6, &mut ref_state);
            let what = format!("GPU chunked rule {geometry:?} alpha {alpha_mid}, {t} tokens");
            let got = read_f32(&gpu, &out, expect.len()).unwrap();
            assert_close(&what, &got, &expect, 2e-5, 1e-4);
            let got = read_f32(&gpu, &state, ref_state.len()).unwrap();
            assert_close(&format!("{what} state"), &got, &ref_state, 2e-5, 1e-4);
        }
    }
    // Key heads wider than the state kernel's block are refused, naming the kernel.
    let wide = gdn_config((1, 1, 256, 16));
    let d = f32_buffer(&gpu, "d", 4);
    let io = gdn::DeltaChunkStateIo {
        w: &d,
        u: &d,
        kd: &d,
        qg: &d,
        mqk: &d,
        decay: &d,
        out: &d,
        state: &d,
    };
    match gdn::delta_chunk_state(&gpu, &cache, &wide, 4, io) {
        Err(e) => assert!(e.to_string().contains("delta_chunk_state"), "{e}"),
        Ok(_) => panic!("delta_chunk_state took key heads of 256 dims"),
    }
}
