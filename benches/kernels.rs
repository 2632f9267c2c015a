//! Time of each kernel at Qwen3.5-35B-A3B shapes (hidden 2048; 32 linear value heads and 16
//! key heads of 128; 16 query / 2 KV heads of 256 with 64 rotary dims; 256 experts, 8 used,
//! width 512; vocabulary 248,320): `cargo bench --bench kernels`.
//!
//! Each kernel is recorded REPS times in one pass and submitted once; the figure is wall
//! time per dispatch around the submit (timestamp queries come with the executor's profiler).

use std::time::Instant;

use qwen_wgpu::loader::config::{AttentionConfig, GdnConfig};
use qwen_wgpu::loader::GgmlType;
use qwen_wgpu::model::activations::kernel_sizes::DELTA_CHUNK;
use qwen_wgpu::model::reference::sample::Draw;
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::experts::{ExpertTable, ExpertTensor};
use qwen_wgpu::runtime::ops::attention::{
    flash_prefill, qk_norm_rope, AttentionStep, FlashDecode, FlashDecodeBuffers, FlashPrefillIo,
    QkNormRopeIo, FLASH_CHUNK,
};
use qwen_wgpu::runtime::ops::linear::{
    embed, matmul, matvec_batch, matvec_experts, ExpertWeights, Matvec, SlotInput, SlotOutput,
    Strided,
};
use qwen_wgpu::runtime::ops::moe::{moe_route, MoeRouteIo, RouteShape};
use qwen_wgpu::runtime::ops::sample::{
    argmax_partials_bytes, top_k_partials_bytes, Argmax, SampleBuffers, TopKSampler,
};
use qwen_wgpu::runtime::ops::{gdn, norm, Dispatch};
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer, MatrixShape, QuantMatrix};
use qwen_wgpu::runtime::{AdapterChoice, GpuContext};

const REPS: usize = 10;

/// Times `dispatches` and prints microseconds a repetition; returns them, or `None` when
/// the name is filtered out.
fn time(
    gpu: &GpuContext,
    name: &str,
    dispatches: &[&Dispatch],
    sync: &wgpu::Buffer,
) -> Option<f64> {
    // `cargo bench --bench kernels -- WORD` times only the kernels whose name holds WORD.
    if let Some(word) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        if !name.contains(&word) {
            return None;
        }
    }
    let run = || {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..REPS {
                for d in dispatches {
                    d.encode(&mut pass);
                }
            }
        }
        gpu.queue.submit([enc.finish()]);
        read_f32(gpu, sync, 1).expect("read-back");
    };
    run();
    let t = Instant::now();
    run();
    let us = t.elapsed().as_secs_f64() * 1e6 / REPS as f64;
    println!("{name:<52} {us:>10.1} us");
    Some(us)
}

fn random(n: usize, scale: f32, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| scale * rng.symmetric_f32()).collect()
}

/// What every section shares: the device, the pipelines, one random stream.
struct Bench {
    gpu: GpuContext,
    cache: PipelineCache,
    rng: SplitMix64,
    max_piece: u64,
}

impl Bench {
    fn buf(&self, v: &[f32]) -> wgpu::Buffer {
        storage_buffer(&self.gpu, "b", bytemuck::cast_slice(v))
    }

    /// A buffer of `n` random values in `[-scale, scale]`.
    fn random_buf(&mut self, n: usize, scale: f32) -> wgpu::Buffer {
        let v = random(n, scale, &mut self.rng);
        self.buf(&v)
    }

    /// Random bytes for `rows` rows of `ty` blocks of hidden width (scales kept small).
    fn random_weights(&mut self, ty: GgmlType, rows: usize) -> Vec<u8> {
        (0..ty.row_bytes(HIDDEN as u64).unwrap() as usize * rows)
            .map(|_| (self.rng.next_u64() & 0x3F) as u8)
            .collect()
    }

    fn matrix(&mut self, name: &str, ty: GgmlType, rows: u32) -> QuantMatrix {
        let bytes = self.random_weights(ty, rows as usize);
        let shape = MatrixShape {
            ty,
            cols: HIDDEN,
            rows,
        };
        QuantMatrix::upload(&self.gpu, name, shape, &bytes, self.max_piece).unwrap()
    }

    fn time(&self, name: &str, dispatches: &[&Dispatch], sync: &wgpu::Buffer) {
        time(&self.gpu, name, dispatches, sync);
    }

    /// Times `dispatches` of `flops` floating-point operations and prints the rate.
    fn time_flops(&self, name: &str, dispatches: &[&Dispatch], sync: &wgpu::Buffer, flops: f64) {
        if let Some(us) = time(&self.gpu, name, dispatches, sync) {
            println!("{:<52} {:>10.1} GFLOP/s", "", flops / us / 1e3);
        }
    }
}

/// The hidden width.
const HIDDEN: u32 = 2048;

fn main() {
    let gpu = match GpuContext::new(&AdapterChoice::from_env()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("no GPU: {e}");
            return;
        }
    };
    println!("adapter: {}", gpu.describe());
    let max_piece = gpu.limits.max_storage_buffer_binding_size;
    let mut b = Bench {
        gpu,
        cache: PipelineCache::default(),
        rng: SplitMix64::new(3),
        max_piece,
    };
    norms(&mut b);
    gated_delta_net(&mut b);
    attention(&mut b);
    let up_exps = moe(&mut b);
    prefill(&mut b, &up_exps);
    matmul_forms(&mut b);
    embed_and_sample(&mut b);
}

/// Norms over the hidden state.
fn norms(b: &mut Bench) {
    let e = HIDDEN;
    let x = b.random_buf(e as usize, 1.0);
    let w = b.random_buf(e as usize, 1.0);
    let y = f32_buffer(&b.gpu, "y", e as usize);
    let rows = norm::Rows {
        n: e,
        rows: 1,
        eps: 1e-6,
    };
    let io = norm::RmsNormIo {
        src: &x,
        w: &w,
        y: &y,
    };
    let d = norm::rms_norm(&b.gpu, &b.cache, rows, io).unwrap();
    b.time("rms_norm 1 x 2048", &[&d], &y);
}

/// Gated DeltaNet: conv over the 8192 qkv channels, the delta rule over 32 heads, and both
/// in the one decode dispatch.
fn gated_delta_net(b: &mut Bench) {
    let g = GdnConfig {
        n_k_heads: 16,
        n_v_heads: 32,
        d_k: 128,
        d_v: 128,
        conv_kernel: 4,
    };
    let ch = g.conv_channels() as usize;
    for n_tokens in [1usize, 64, 512] {
        let qkv = b.random_buf(n_tokens * ch, 1.0);
        let cw = b.random_buf(ch * 4, 0.5);
        let conv_out = f32_buffer(&b.gpu, "conv", n_tokens * ch);
        let state = b.buf(&vec![0.0; 4 * ch]);
        let step = b.buf(&[0.0; 2]);
        let shape = gdn::ConvShape {
            channels: ch as u32,
            n_tokens: n_tokens as u32,
            taps: 4,
        };
        let io = gdn::CausalConv1dIo {
            x: &qkv,
            w: &cw,
            out: &conv_out,
            state: &state,
            step: &step,
        };
        let d = gdn::causal_conv1d(&b.gpu, &b.cache, shape, io).unwrap();
        let what = format!("causal_conv1d {ch} channels x {n_tokens} tokens");
        b.time(&what, &[&d], &conv_out);
        let beta = b.random_buf(n_tokens * 32, 1.0);
        let alpha = b.random_buf(n_tokens * 32, 1.0);
        let dt = b.random_buf(32, 0.5);
        let a: Vec<f32> = random(32, 1.0, &mut b.rng)
            .iter()
            .map(|u| -u.exp())
            .collect();
        let ab = b.buf(&a);
        let o = f32_buffer(&b.gpu, "o", n_tokens * 32 * 128);
        let s = b.buf(&vec![0.0; 32 * 128 * 128]);
        let io = gdn::DeltaRuleIo {
            conv_out: &conv_out,
            beta_raw: &beta,
            alpha: &alpha,
            dt_bias: &dt,
            a_neg: &ab,
            out: &o,
            state: &s,
        };
        let d = gdn::delta_rule(&b.gpu, &b.cache, &g, n_tokens as u32, 1e-6, io).unwrap();
        let what = format!("delta_rule 32 heads 128x128 x {n_tokens} tokens");
        b.time(&what, &[&d], &o);
        if n_tokens > 1 {
            let (wy, st) = delta_chunks(b, &g, n_tokens, io);
            let what = format!("delta_chunk_wy 32 heads 128x128 x {n_tokens} tokens");
            b.time(&what, &[&wy], &o);
            let what = format!("delta_chunk_state 32 heads 128x128 x {n_tokens} tokens");
            b.time(&what, &[&st], &o);
        }
        if n_tokens == 1 {
            let io = gdn::ConvDeltaRuleIo {
                qkv: &qkv,
                conv_w: &cw,
                conv_state: &state,
                step: &step,
                beta_raw: &beta,
                alpha: &alpha,
                dt_bias: &dt,
                a_neg: &ab,
                out: &o,
                state: &s,
            };
            let d = gdn::conv_delta_rule(&b.gpu, &b.cache, &g, (1e-6, 0), io).unwrap();
            b.time("conv_delta_rule 32 heads 128x128, 1 token", &[&d], &o);
        }
    }
}

/// The chunked delta rule's two kernels on the buffers of the sequential one, `io`.
fn delta_chunks(
    b: &Bench,
    g: &GdnConfig,
    n_tokens: usize,
    io: gdn::DeltaRuleIo<'_>,
) -> (Dispatch, Dispatch) {
    let chunk = DELTA_CHUNK as usize;
    let rows = n_tokens.div_ceil(chunk) * chunk * g.n_v_heads as usize;
    let factor = |words: usize| f32_buffer(&b.gpu, "chunk", words);
    let (w, u, kd, qg) = (
        factor(rows * 128),
        factor(rows * 128),
        factor(rows * 128),
        factor(rows * 128),
    );
    let (mqk, decay) = (factor(rows * chunk), factor(rows / chunk));
    let wy_io = gdn::DeltaChunkWyIo {
        conv_out: io.conv_out,
        beta_raw: io.beta_raw,
        alpha: io.alpha,
        dt_bias: io.dt_bias,
        a_neg: io.a_neg,
        w: &w,
        u: &u,
        kd: &kd,
        qg: &qg,
        mqk: &mqk,
        decay: &decay,
    };
    let wy = gdn::delta_chunk_wy(&b.gpu, &b.cache, g, n_tokens as u32, 1e-6, wy_io).unwrap();
    let state_io = gdn::DeltaChunkStateIo {
        w: &w,
        u: &u,
        kd: &kd,
        qg: &qg,
        mqk: &mqk,
        decay: &decay,
        out: io.out,
        state: io.state,
    };
    let st = gdn::delta_chunk_state(&b.gpu, &b.cache, g, n_tokens as u32, state_io).unwrap();
    (wy, st)
}

/// Attention: 16 query / 2 KV heads of 256, f16 cache, decode at 1024 tokens of context,
/// and a 64-token prefill over the same cache.
fn attention(b: &mut Bench) {
    let att = AttentionConfig {
        n_head: 16,
        n_head_kv: 2,
        head_dim: 256,
        n_rot: 64,
        rope_base: 1e7,
        rope_sections: [11, 11, 10, 0],
        output_gate: true,
    };
    let ctx_len = 1024usize;
    let q_in = b.random_buf(16 * 512, 1.0);
    let kv_in = b.random_buf(2 * 256, 1.0);
    let norms = b.buf(&vec![1.0; 256]);
    let freqs = b.random_buf(32, 0.5);
    let q = f32_buffer(&b.gpu, "q", 16 * 256);
    let kc = b.random_buf(ctx_len * 2 * 256 / 2, 0.01);
    let vc = b.random_buf(ctx_len * 2 * 256 / 2, 0.01);
    let step_buf = f32_buffer(&b.gpu, "step", 2);
    let step = AttentionStep {
        config: &att,
        kv_f16: true,
        n_tokens: 1,
        pos0: (ctx_len - 1) as u32,
        first_row: 0,
        step: &step_buf,
    };
    let io = QkNormRopeIo {
        q_in: &q_in,
        k_in: &kv_in,
        v_in: &kv_in,
        q_norm: &norms,
        k_norm: &norms,
        freqs: &freqs,
        q_out: &q,
        k_cache: &kc,
        v_cache: &vc,
        step: &step_buf,
    };
    let d = qk_norm_rope(&b.gpu, &b.cache, step, 1e-6, io).unwrap();
    b.time("qk_norm_rope 16+2+2 heads x 256 (decode)", &[&d], &q);
    let chunks = (ctx_len as u32).div_ceil(FLASH_CHUNK) as usize;
    let partials = f32_buffer(&b.gpu, "p", 16 * chunks * 258);
    let out = f32_buffer(&b.gpu, "out", 16 * 256);
    let buffers = FlashDecodeBuffers {
        q: &q,
        k_cache: &kc,
        v_cache: &vc,
        partials: &partials,
        q_in: &q_in,
        out: &out,
    };
    let fa = FlashDecode::new(&b.gpu, &b.cache, step, buffers).unwrap();
    let what = "flash_decode, 1024 positions (2 passes)";
    b.time(what, &[&fa.partial, &fa.combine], &out);
    let q64 = b.random_buf(64 * 16 * 256, 1.0);
    let q_in64 = b.random_buf(64 * 16 * 512, 1.0);
    let out64 = f32_buffer(&b.gpu, "out64", 64 * 16 * 256);
    let step = AttentionStep {
        n_tokens: 64,
        pos0: 0,
        first_row: 0,
        ..step
    };
    let io = FlashPrefillIo {
        q: &q64,
        k_cache: &kc,
        v_cache: &vc,
        q_in: &q_in64,
        out: &out64,
        step: &step_buf,
    };
    let d = flash_prefill(&b.gpu, &b.cache, step, io).unwrap();
    b.time("flash_prefill, 64 tokens", &[&d], &out64);
    long_prefill_attention(b, &att);
}

/// A long prompt's last step: 512 queries at positions 3584..4096 (128 at 896..1024 on a
/// CPU device, which keeps its run within minutes), in each form the adapter runs (its
/// cooperative matrices, with each K and V row read once for a KV head's query heads, and
/// the f32 form; without cooperative matrices, the f32 form and the GPU kernel emulated).
fn long_prefill_attention(b: &mut Bench, att: &AttentionConfig) {
    use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
    let cpu = b.gpu.info.device_type == wgpu::DeviceType::Cpu;
    let (n_q, positions) = if cpu { (128u32, 1024u32) } else { (512, 4096) };
    let (nh, hd) = (att.n_head, att.head_dim);
    // f16 K and V, two to a word.
    let words = (positions * att.n_head_kv * hd / 2) as usize;
    let kc = b.random_buf(words, 0.01);
    let vc = b.random_buf(words, 0.01);
    let q = b.random_buf((n_q * nh * hd) as usize, 1.0);
    let q_in = b.random_buf((n_q * nh * 2 * hd) as usize, 1.0);
    let out = f32_buffer(&b.gpu, "out", (n_q * nh * hd) as usize);
    let step_buf = f32_buffer(&b.gpu, "step", 2);
    let own = b.gpu.features.matmul;
    let mut forms = vec![own];
    if own != MatmulForm::Tiled {
        forms.push(MatmulForm::Tiled);
    } else if b.gpu.features.shader_f16 {
        // The GPU kernel's plain-WGSL emulation: its tiling without the matrix units.
        forms.push(MatmulForm::CoopEmulated);
    }
    // Each query sees the positions before the step and half the step's, on average.
    let seen = (positions - n_q) as f64 + n_q as f64 / 2.0;
    let flops = 4.0 * (hd * nh * n_q) as f64 * seen;
    for form in forms {
        b.gpu.features.matmul = form;
        let step = AttentionStep {
            config: att,
            kv_f16: true,
            n_tokens: n_q,
            pos0: positions - n_q,
            first_row: 0,
            step: &step_buf,
        };
        let io = FlashPrefillIo {
            q: &q,
            k_cache: &kc,
            v_cache: &vc,
            q_in: &q_in,
            out: &out,
            step: &step_buf,
        };
        let d = flash_prefill(&b.gpu, &b.cache, step, io).unwrap();
        let what = format!("flash_prefill {n_q} queries at {positions} positions {form:?}");
        b.time_flops(&what, &[&d], &out, flops);
    }
    b.gpu.features.matmul = own;
}

/// MoE: routing over 256 experts, 8 experts' up projections (512 x 2048 q4_K each).
/// Returns the up projections for the prefill section.
fn moe(b: &mut Bench) -> ExpertTensor {
    let e = HIDDEN;
    let logits = b.random_buf(256, 2.0);
    let ids = f32_buffer(&b.gpu, "ids", 8);
    let wts = f32_buffer(&b.gpu, "w", 8);
    let table = ExpertTable::new(&b.gpu, 256, 256).unwrap();
    let table_512 = ExpertTable::new(&b.gpu, 512, 512).unwrap();
    let shape = RouteShape {
        n_expert: 256,
        k: 8,
        n_tokens: 1,
        renormalise: true,
    };
    let io = MoeRouteIo {
        logits: &logits,
        ids: &ids,
        weights: &wts,
        location: &table.location,
        counts: &table.counts,
    };
    let d = moe_route(&b.gpu, &b.cache, shape, io).unwrap();
    b.time("moe_route 8 of 256", &[&d], &wts);
    // Qwen3.5-397B-A17B's router: 10 of 512.
    let logits_512 = b.random_buf(512, 2.0);
    let (ids_10, wts_10) = (f32_buffer(&b.gpu, "ids", 10), f32_buffer(&b.gpu, "w", 10));
    let shape = RouteShape {
        n_expert: 512,
        k: 10,
        ..shape
    };
    let io = MoeRouteIo {
        logits: &logits_512,
        ids: &ids_10,
        weights: &wts_10,
        location: &table_512.location,
        counts: &table_512.counts,
    };
    let d = moe_route(&b.gpu, &b.cache, shape, io).unwrap();
    b.time("moe_route 10 of 512", &[&d], &wts_10);
    let ty = GgmlType::Q4K;
    let experts_bytes = b.random_weights(ty, 512 * 256);
    let shape = MatrixShape {
        ty,
        cols: e,
        rows: 512,
    };
    let m = QuantMatrix::upload_experts(&b.gpu, "up_exps", shape, 256, &experts_bytes, b.max_piece)
        .unwrap();
    let m = ExpertTensor::with_table(m, 512, table);
    let hidden = b.random_buf(e as usize, 1.0);
    let up = f32_buffer(&b.gpu, "up", 8 * 512);
    let experts = ExpertWeights { w: &m };
    let input = SlotInput {
        buffer: &hidden,
        stride: e,
        group: 8,
    };
    let output = SlotOutput {
        buffer: &up,
        stride: 512,
        offset: 0,
    };
    let ds = matvec_experts(&b.gpu, &b.cache, experts, 8, &ids, input, output).unwrap();
    let refs: Vec<&Dispatch> = ds.iter().collect();
    let what = format!("matvec_experts q4_K 8 x 512 x 2048 ({} pieces)", ds.len());
    b.time(&what, &refs, &up);
    // The same experts read from host memory over the bus (none resident).
    let host_table = ExpertTable::new(&b.gpu, 256, 0).unwrap();
    let placed = (host_table, &[][..]);
    let host = ExpertTensor::split(
        &b.gpu,
        "up_exps",
        (shape, 256),
        &experts_bytes,
        b.max_piece,
        placed,
    )
    .unwrap();
    let experts = ExpertWeights { w: &host };
    let ds = matvec_experts(&b.gpu, &b.cache, experts, 8, &ids, input, output).unwrap();
    let refs: Vec<&Dispatch> = ds.iter().collect();
    let what = format!(
        "matvec_experts q4_K 8 x 512 x 2048 from host memory ({} pieces)",
        ds.len()
    );
    b.time(&what, &refs, &up);
    m
}

/// Prefill: the matmul over 64 tokens; a 128-token prompt chunk's 1024 expert slots over 32
/// experts of `up_exps` (the per-slot form), and the matmul at the GDN input projection's
/// shape.
fn prefill(b: &mut Bench, up_exps: &ExpertTensor) {
    let (e, ty) = (HIDDEN, GgmlType::Q4K);
    let wm = b.matrix("w", ty, e);
    let xs = b.random_buf(64 * e as usize, 1.0);
    let ys = f32_buffer(&b.gpu, "ys", 64 * e as usize);
    let (x, y) = (Strided::rows(&xs, e), Strided::rows(&ys, e));
    let ds = matmul(&b.gpu, &b.cache, &wm, 64, x, y).unwrap();
    let what = "matmul q4_K 2048 x 2048 x 64 tokens";
    b.time(what, &ds.iter().collect::<Vec<_>>(), &ys);
    // The other types of Q5_K_M, Q6_K, IQ4_XS, BF16, Q4_0, Q5_0 and MXFP4_MOE files, each
    // read word-wise, in the prompt's matmul and the decode matvec.
    for other in [
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Iq4Xs,
        GgmlType::Bf16,
        GgmlType::Q4_0,
        GgmlType::Q5_0,
        GgmlType::Mxfp4,
    ] {
        let w = b.matrix("w", other, e);
        let ds = matmul(&b.gpu, &b.cache, &w, 64, x, y).unwrap();
        let what = format!("matmul {other} 2048 x 2048 x 64 tokens");
        b.time(&what, &ds.iter().collect::<Vec<_>>(), &ys);
        let single = Matvec::single(&b.gpu, &b.cache, &w, &xs, 0, &ys, 0).unwrap();
        let what = format!("matvec {other} 2048 x 2048");
        b.time(&what, &single.pieces().iter().collect::<Vec<_>>(), &ys);
    }
    // A batched decode step's projections: one matvec per sequence against one batched one.
    let single = Matvec::single(&b.gpu, &b.cache, &wm, &xs, 0, &ys, 0).unwrap();
    b.time(
        "matvec q4_K 2048 x 2048",
        &single.pieces().iter().collect::<Vec<_>>(),
        &ys,
    );
    // q6_K is the rest of a Q4_K_M file (half the ffn_down, attn_v, the head).
    let w6 = b.matrix("w6", GgmlType::Q6K, e);
    for (w, n) in [(&wm, 1u32), (&wm, 8), (&w6, 1), (&w6, 8)] {
        let ds = matvec_batch(&b.gpu, &b.cache, w, n, x, y).unwrap();
        let what = format!("matvec_batch {} 2048 x 2048 x {n} tokens", w.ty);
        b.time(&what, &ds.iter().collect::<Vec<_>>(), &ys);
    }
    let slot_ids: Vec<u32> = (0..1024u32).map(|s| (s % 8 + 5 * (s / 8)) % 32).collect();
    let slot_ids = storage_buffer(&b.gpu, "slot ids", bytemuck::cast_slice(&slot_ids));
    let chunk = b.random_buf(128 * e as usize, 1.0);
    let chunk_up = f32_buffer(&b.gpu, "chunk up", 1024 * 512);
    let experts = ExpertWeights { w: up_exps };
    let input = SlotInput {
        buffer: &chunk,
        stride: e,
        group: 8,
    };
    let output = SlotOutput {
        buffer: &chunk_up,
        stride: 512,
        offset: 0,
    };
    let ds = matvec_experts(&b.gpu, &b.cache, experts, 1024, &slot_ids, input, output).unwrap();
    let what = "prefill matvec_experts q4_K 1024 slots x 512 x 2048";
    b.time(what, &ds.iter().collect::<Vec<_>>(), &chunk_up);
    let qkv = b.matrix("qkv", ty, 8192);
    let chunk_qkv = f32_buffer(&b.gpu, "chunk qkv", 128 * 8192);
    let (x, y) = (Strided::rows(&chunk, e), Strided::rows(&chunk_qkv, 8192));
    let ds = matmul(&b.gpu, &b.cache, &qkv, 128, x, y).unwrap();
    let what = "prefill matmul q4_K 8192 x 2048 x 128 tokens";
    b.time(what, &ds.iter().collect::<Vec<_>>(), &chunk_qkv);
}

/// The prefill matmuls of a 512-token step (128 on a CPU device) in each form the adapter
/// runs (its cooperative matrices, if any, the f16, 8-bit and f32 tiles), with their rate: Qwen3.5-35B-A3B's GDN input
/// projection (8192 x 2048), and the up projection of its 4096 routed slots grouped by
/// expert (512 x 2048 each), over 32 experts (128 slots each, the bench model's routing)
/// and over 256 (16 each, the real model's).
fn matmul_forms(b: &mut Bench) {
    use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
    use qwen_wgpu::runtime::ops::linear::matmul_experts;
    use qwen_wgpu::runtime::ops::linear::matmul_experts::{token_tile, ExpertGroups};
    use qwen_wgpu::runtime::ops::moe::{moe_group, MoeGroupIo};
    // A CPU device takes 128-token steps, which keep its run within minutes.
    let cpu = b.gpu.info.device_type == wgpu::DeviceType::Cpu;
    let (e, ty, tokens) = (HIDDEN, GgmlType::Q4K, if cpu { 128 } else { 512u32 });
    let own = b.gpu.features.matmul;
    let mut forms = vec![own];
    for form in [
        MatmulForm::TiledHalf,
        MatmulForm::TiledInt8,
        MatmulForm::Tiled,
    ] {
        let f16 = form == MatmulForm::TiledHalf;
        if form != own && (b.gpu.features.shader_f16 || !f16) {
            forms.push(form);
        }
    }
    let qkv = b.matrix("qkv", ty, 8192);
    let x = b.random_buf((tokens * e) as usize, 1.0);
    let y = f32_buffer(&b.gpu, "y", (tokens * 8192) as usize);
    let slots = tokens * 8;
    let ys = f32_buffer(&b.gpu, "slot y", (slots * 512) as usize);
    let order = f32_buffer(&b.gpu, "order", slots as usize);
    for form in forms {
        b.gpu.features.matmul = form;
        let (xs, yd) = (Strided::rows(&x, e), Strided::rows(&y, 8192));
        let ds = matmul(&b.gpu, &b.cache, &qkv, tokens, xs, yd).unwrap();
        let what = format!("matmul q4_K 8192 x 2048 x {tokens} {form:?}");
        let flops = 2.0 * 8192.0 * e as f64 * tokens as f64;
        b.time_flops(&what, &ds.iter().collect::<Vec<_>>(), &y, flops);
        for n_expert in [32u32, 256] {
            let rows = 512u32;
            let bytes = b.random_weights(ty, (n_expert * rows) as usize);
            let shape = MatrixShape { ty, cols: e, rows };
            let w =
                QuantMatrix::upload_experts(&b.gpu, "exps", shape, n_expert, &bytes, b.max_piece)
                    .unwrap();
            let w = ExpertTensor::resident(&b.gpu, w, rows).unwrap();
            // Token t's 8 experts: 8 neighbours from a start that walks the experts.
            let ids: Vec<u32> = (0..slots)
                .map(|s| (s % 8 + 5 * (s / 8)) % n_expert)
                .collect();
            let ids = storage_buffer(&b.gpu, "ids", bytemuck::cast_slice(&ids));
            let offsets = f32_buffer(&b.gpu, "offsets", n_expert as usize + 1);
            let io = MoeGroupIo {
                ids: &ids,
                order: &order,
                offsets: &offsets,
            };
            let group = moe_group(&b.gpu, &b.cache, n_expert, slots, io).unwrap();
            let groups = ExpertGroups {
                order: &order,
                offsets: &offsets,
                token_tile: token_tile(tokens, 8, n_expert),
            };
            let experts = ExpertWeights { w: &w };
            let input = SlotInput {
                buffer: &x,
                stride: e,
                group: 8,
            };
            let output = SlotOutput {
                buffer: &ys,
                stride: rows,
                offset: 0,
            };
            let ds = matmul_experts::matmul_experts(
                &b.gpu, &b.cache, experts, tokens, groups, input, output,
            )
            .unwrap();
            let what =
                format!("matmul_experts q4_K {slots} slots / {n_expert} x 512 x 2048 {form:?}");
            let flops = 2.0 * slots as f64 * rows as f64 * e as f64;
            let mut all = vec![&group];
            all.extend(ds.iter());
            b.time_flops(&what, &all, &ys, flops);
        }
    }
    b.gpu.features.matmul = own;
}

/// The embedding lookup in a q4_K table of the real vocabulary, and sampling over it.
fn embed_and_sample(b: &mut Bench) {
    let vocab = 248_320u32;
    let table = b.matrix("token_embd", GgmlType::Q4K, vocab);
    let tok = storage_buffer(&b.gpu, "tok", bytemuck::cast_slice(&[123_456u32]));
    let emb = f32_buffer(&b.gpu, "emb", HIDDEN as usize);
    let ds = embed(&b.gpu, &b.cache, &table, 1, &tok, &emb).unwrap();
    let what = format!("embed q4_K row of 2048 ({} pieces)", ds.len());
    b.time(&what, &ds.iter().collect::<Vec<_>>(), &emb);
    let lg = b.random_buf(vocab as usize, 8.0);
    let token = f32_buffer(&b.gpu, "token", 1);
    let ap = f32_buffer(&b.gpu, "ap", (argmax_partials_bytes(vocab) / 4) as usize);
    let buffers = SampleBuffers {
        logits: &lg,
        partials: &ap,
        token: &token,
    };
    let am = Argmax::new(&b.gpu, &b.cache, vocab, buffers).unwrap();
    let what = "argmax over 248,320 logits (2 passes)";
    b.time(what, &[&am.partial, &am.reduce], &token);
    let tp = f32_buffer(&b.gpu, "tp", (top_k_partials_bytes(vocab, 40) / 4) as usize);
    let buffers = SampleBuffers {
        logits: &lg,
        partials: &tp,
        token: &token,
    };
    let mut sampler = TopKSampler::new(&b.gpu, &b.cache, vocab, 40, buffers).unwrap();
    let draw = Draw {
        temperature: 0.8,
        top_p: 0.95,
        min_p: 0.05,
        u: 0.5,
    };
    sampler.set_draw(&b.gpu.queue, &draw).unwrap();
    let what = "top_k 40 / top-p sampling over 248,320 (2 passes)";
    b.time(what, &[&sampler.partial, &sampler.sample], &token);
}
