//! Time of each kernel at Qwen3.5-35B-A3B shapes (hidden 2048; 32 linear value heads and 16
//! key heads of 128; 16 query / 2 KV heads of 256 with 64 rotary dims; 256 experts, 8 used,
//! width 512; vocabulary 248,320): `cargo bench --bench kernels`.
//!
//! Each kernel is recorded REPS times in one pass and submitted once; the figure is wall
//! time per dispatch around the submit (timestamp queries come with the executor's profiler).

use std::time::Instant;

use qwen_wgpu::loader::config::{AttentionConfig, GdnConfig};
use qwen_wgpu::loader::GgmlType;
use qwen_wgpu::model::reference::sample::Draw;
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::attention::{
    flash_prefill, qk_norm_rope, AttentionStep, FlashDecode, FlashDecodeBuffers, FlashPrefillIo,
    QkNormRopeIo, FLASH_CHUNK,
};
use qwen_wgpu::runtime::ops::linear::{
    embed, matmul, matvec_experts, ExpertWeights, SlotInput, SlotOutput, Strided,
};
use qwen_wgpu::runtime::ops::moe::{moe_route, MoeRouteIo, RouteShape};
use qwen_wgpu::runtime::ops::sample::{
    argmax_partials_bytes, top_k_partials_bytes, Argmax, SampleBuffers, TopKSampler,
};
use qwen_wgpu::runtime::ops::{gdn, norm, Dispatch};
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer, QuantMatrix};
use qwen_wgpu::runtime::{AdapterChoice, GpuContext};

const REPS: usize = 10;

fn time(gpu: &GpuContext, name: &str, dispatches: &[&Dispatch], sync: &wgpu::Buffer) {
    // `cargo bench --bench kernels -- WORD` times only the kernels whose name holds WORD.
    if let Some(word) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        if !name.contains(&word) {
            return;
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
}

fn random(n: usize, scale: f32, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| scale * rng.symmetric_f32()).collect()
}

fn main() {
    let gpu = match GpuContext::new(&AdapterChoice::from_env()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("no GPU: {e}");
            return;
        }
    };
    println!("adapter: {}", gpu.describe());
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(3);
    let buf = |v: &[f32]| storage_buffer(&gpu, "b", bytemuck::cast_slice(v));
    let max_piece = gpu.limits.max_storage_buffer_binding_size;
    let e = 2048u32;

    // Norms over the hidden state.
    let x = buf(&random(e as usize, 1.0, &mut rng));
    let w = buf(&random(e as usize, 1.0, &mut rng));
    let y = f32_buffer(&gpu, "y", e as usize);
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
    let d = norm::rms_norm(&gpu, &cache, rows, io).unwrap();
    time(&gpu, "rms_norm 1 x 2048", &[&d], &y);

    // Gated DeltaNet: conv over the 8192 qkv channels, the delta rule over 32 heads.
    let g = GdnConfig {
        n_k_heads: 16,
        n_v_heads: 32,
        d_k: 128,
        d_v: 128,
        conv_kernel: 4,
    };
    let ch = g.conv_channels() as usize;
    for n_tokens in [1usize, 64] {
        let qkv = buf(&random(n_tokens * ch, 1.0, &mut rng));
        let cw = buf(&random(ch * 4, 0.5, &mut rng));
        let conv_out = f32_buffer(&gpu, "conv", n_tokens * ch);
        let state = buf(&vec![0.0; 3 * ch]);
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
        };
        let d = gdn::causal_conv1d(&gpu, &cache, shape, io).unwrap();
        time(
            &gpu,
            &format!("causal_conv1d {ch} channels x {n_tokens} tokens"),
            &[&d],
            &conv_out,
        );
        let beta = buf(&random(n_tokens * 32, 1.0, &mut rng));
        let alpha = buf(&random(n_tokens * 32, 1.0, &mut rng));
        let dt = buf(&random(32, 0.5, &mut rng));
        let a: Vec<f32> = random(32, 1.0, &mut rng).iter().map(|u| -u.exp()).collect();
        let ab = buf(&a);
        let o = f32_buffer(&gpu, "o", n_tokens * 32 * 128);
        let s = buf(&vec![0.0; 32 * 128 * 128]);
        let io = gdn::DeltaRuleIo {
            conv_out: &conv_out,
            beta_raw: &beta,
            alpha: &alpha,
            dt_bias: &dt,
            a_neg: &ab,
            out: &o,
            state: &s,
        };
        let d = gdn::delta_rule(&gpu, &cache, &g, n_tokens as u32, 1e-6, io).unwrap();
        time(
            &gpu,
            &format!("delta_rule 32 heads 128x128 x {n_tokens} tokens"),
            &[&d],
            &o,
        );
    }

    // Attention: 16 query / 2 KV heads of 256, f16 cache, decode at 1024 tokens of context.
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
    let q_in = buf(&random(16 * 512, 1.0, &mut rng));
    let kv_in = buf(&random(2 * 256, 1.0, &mut rng));
    let norms = buf(&vec![1.0; 256]);
    let freqs = buf(&random(32, 0.5, &mut rng));
    let q = f32_buffer(&gpu, "q", 16 * 256);
    let kc = buf(&random(ctx_len * 2 * 256 / 2, 0.01, &mut rng));
    let vc = buf(&random(ctx_len * 2 * 256 / 2, 0.01, &mut rng));
    let step = AttentionStep {
        config: &att,
        kv_f16: true,
        n_tokens: 1,
        pos0: (ctx_len - 1) as u32,
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
    };
    let d = qk_norm_rope(&gpu, &cache, step, 1e-6, io).unwrap();
    time(
        &gpu,
        "qk_norm_rope 16+2+2 heads x 256 (decode)",
        &[&d.dispatch],
        &q,
    );
    let chunks = (ctx_len as u32).div_ceil(FLASH_CHUNK) as usize;
    let partials = f32_buffer(&gpu, "p", 16 * chunks * 258);
    let out = f32_buffer(&gpu, "out", 16 * 256);
    let buffers = FlashDecodeBuffers {
        q: &q,
        k_cache: &kc,
        v_cache: &vc,
        partials: &partials,
        q_in: &q_in,
        out: &out,
    };
    let fa = FlashDecode::new(&gpu, &cache, step, buffers).unwrap();
    time(
        &gpu,
        "flash_decode, 1024 positions (2 passes)",
        &[&fa.partial, &fa.combine],
        &out,
    );
    let q64 = buf(&random(64 * 16 * 256, 1.0, &mut rng));
    let q_in64 = buf(&random(64 * 16 * 512, 1.0, &mut rng));
    let out64 = f32_buffer(&gpu, "out64", 64 * 16 * 256);
    let step = AttentionStep {
        n_tokens: 64,
        pos0: 0,
        ..step
    };
    let io = FlashPrefillIo {
        q: &q64,
        k_cache: &kc,
        v_cache: &vc,
        q_in: &q_in64,
        out: &out64,
    };
    let d = flash_prefill(&gpu, &cache, step, io).unwrap();
    time(&gpu, "flash_prefill, 64 tokens", &[&d.dispatch], &out64);

    // MoE: routing over 256 experts, 8 experts' up projections (512 x 2048 q4_K each).
    let logits = buf(&random(256, 2.0, &mut rng));
    let ids = f32_buffer(&gpu, "ids", 8);
    let wts = f32_buffer(&gpu, "w", 8);
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
    };
    let d = moe_route(&gpu, &cache, shape, io).unwrap();
    time(&gpu, "moe_route 8 of 256", &[&d], &wts);
    let ty = GgmlType::Q4K;
    let experts_bytes: Vec<u8> = (0..ty.row_bytes(e as u64).unwrap() as usize * 512 * 256)
        .map(|_| (rng.next_u64() & 0x3F) as u8)
        .collect();
    let m =
        QuantMatrix::upload_experts(&gpu, "up_exps", ty, e, 512, 256, &experts_bytes, max_piece)
            .unwrap();
    let hidden = buf(&random(e as usize, 1.0, &mut rng));
    let up = f32_buffer(&gpu, "up", 8 * 512);
    let experts = ExpertWeights {
        w: &m,
        rows_per_expert: 512,
    };
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
    let ds = matvec_experts(&gpu, &cache, experts, 8, &ids, input, output).unwrap();
    let refs: Vec<&Dispatch> = ds.iter().collect();
    time(
        &gpu,
        &format!("matvec_experts q4_K 8 x 512 x 2048 ({} pieces)", ds.len()),
        &refs,
        &up,
    );

    // Prefill matmul, embedding, sampling.
    let wq: Vec<u8> = (0..ty.row_bytes(e as u64).unwrap() as usize * e as usize)
        .map(|_| (rng.next_u64() & 0x3F) as u8)
        .collect();
    let wm = QuantMatrix::upload(&gpu, "w", ty, e, e, &wq, max_piece).unwrap();
    let xs = buf(&random(64 * e as usize, 1.0, &mut rng));
    let ys = f32_buffer(&gpu, "ys", 64 * e as usize);
    let ds = matmul(
        &gpu,
        &cache,
        &wm,
        64,
        Strided::rows(&xs, e),
        Strided::rows(&ys, e),
    )
    .unwrap();
    time(
        &gpu,
        "matmul q4_K 2048 x 2048 x 64 tokens",
        &ds.iter().collect::<Vec<_>>(),
        &ys,
    );
    // A 128-token prompt chunk: its 1024 expert slots over 32 experts (the per-slot form),
    // and the matmul at the GDN input projection's shape.
    let slot_ids: Vec<u32> = (0..1024u32).map(|s| (s % 8 + 5 * (s / 8)) % 32).collect();
    let slot_ids = storage_buffer(&gpu, "slot ids", bytemuck::cast_slice(&slot_ids));
    let chunk = buf(&random(128 * e as usize, 1.0, &mut rng));
    let chunk_up = f32_buffer(&gpu, "chunk up", 1024 * 512);
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
    let ds = matvec_experts(&gpu, &cache, experts, 1024, &slot_ids, input, output).unwrap();
    time(
        &gpu,
        "prefill matvec_experts q4_K 1024 slots x 512 x 2048",
        &ds.iter().collect::<Vec<_>>(),
        &chunk_up,
    );
    let qkv_bytes: Vec<u8> = (0..ty.row_bytes(e as u64).unwrap() as usize * 8192)
        .map(|_| (rng.next_u64() & 0x3F) as u8)
        .collect();
    let qkv = QuantMatrix::upload(&gpu, "qkv", ty, e, 8192, &qkv_bytes, max_piece).unwrap();
    let chunk_qkv = f32_buffer(&gpu, "chunk qkv", 128 * 8192);
    let ds = matmul(
        &gpu,
        &cache,
        &qkv,
        128,
        Strided::rows(&chunk, e),
        Strided::rows(&chunk_qkv, 8192),
    )
    .unwrap();
    time(
        &gpu,
        "prefill matmul q4_K 8192 x 2048 x 128 tokens",
        &ds.iter().collect::<Vec<_>>(),
        &chunk_qkv,
    );
    let vocab = 248_320u32;
    let table_bytes: Vec<u8> = (0..ty.row_bytes(e as u64).unwrap() as usize * vocab as usize)
        .map(|_| (rng.next_u64() & 0x3F) as u8)
        .collect();
    let table =
        QuantMatrix::upload(&gpu, "token_embd", ty, e, vocab, &table_bytes, max_piece).unwrap();
    let tok = storage_buffer(&gpu, "tok", bytemuck::cast_slice(&[123_456u32]));
    let emb = f32_buffer(&gpu, "emb", e as usize);
    let ds = embed(&gpu, &cache, &table, 1, &tok, &emb).unwrap();
    time(
        &gpu,
        &format!("embed q4_K row of 2048 ({} pieces)", ds.len()),
        &ds.iter().collect::<Vec<_>>(),
        &emb,
    );
    let lg = buf(&random(vocab as usize, 8.0, &mut rng));
    let token = f32_buffer(&gpu, "token", 1);
    let ap = f32_buffer(&gpu, "ap", (argmax_partials_bytes(vocab) / 4) as usize);
    let am = Argmax::new(
        &gpu,
        &cache,
        vocab,
        SampleBuffers {
            logits: &lg,
            partials: &ap,
            token: &token,
        },
    )
    .unwrap();
    time(
        &gpu,
        "argmax over 248,320 logits (2 passes)",
        &[&am.partial, &am.reduce],
        &token,
    );
    let tp = f32_buffer(&gpu, "tp", (top_k_partials_bytes(vocab, 40) / 4) as usize);
    let b = SampleBuffers {
        logits: &lg,
        partials: &tp,
        token: &token,
    };
    let mut sampler = TopKSampler::new(&gpu, &cache, vocab, 40, b).unwrap();
    sampler
        .set_draw(
            &gpu.queue,
            &Draw {
                temperature: 0.8,
                top_p: 0.95,
                min_p: 0.05,
                u: 0.5,
            },
        )
        .unwrap();
    time(
        &gpu,
        "top_k 40 / top-p sampling over 248,320 (2 passes)",
        &[&sampler.partial, &sampler.sample],
        &token,
    );
}
