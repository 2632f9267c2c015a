//! `shaders/attention/` against the reference: q/k RMSNorm + rotary (+ the cache append),
//! and causal flash attention with GQA and the sigmoid gate, for decode (1 query) and
//! prefill blocks, at several cache fills, with f16 and f32 caches.

use half::f16;
use qwen_wgpu::loader::config::AttentionConfig;
use qwen_wgpu::model::reference::attention::flash_decode;
use qwen_wgpu::model::reference::norm::{rms_norm, sigmoid};
use qwen_wgpu::model::reference::rope::{rope_frequencies, rope_neox};
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::attention::flash_prefill::gqa_workgroup_bytes;
use qwen_wgpu::runtime::ops::attention::flash_prefill::{gqa_shape, GQA_KEY_TILES, GQA_ROWS};
use qwen_wgpu::runtime::ops::attention::{
    flash_prefill, qk_norm_rope, AttentionStep, FlashDecode, FlashDecodeBuffers, FlashPrefillIo,
    QkNormRopeIo, FLASH_CHUNK,
};
use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer};
use qwen_wgpu::runtime::GpuContext;

use crate::common::{
    assert_close, for_each_matmul_form, for_each_variant, gpu_or_skip, run_dispatches,
};

const EPS: f32 = 1e-6;

fn random(n: usize, scale: f32, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| scale * rng.symmetric_f32()).collect()
}

fn buf(gpu: &GpuContext, v: &[f32]) -> wgpu::Buffer {
    storage_buffer(gpu, "t", bytemuck::cast_slice(v))
}

fn geometry(
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    n_rot: u32,
    gated: bool,
) -> AttentionConfig {
    AttentionConfig {
        n_head,
        n_head_kv,
        head_dim,
        n_rot,
        rope_base: 10_000_000.0,
        rope_sections: if gated {
            [2 * n_rot / 12 + 1, n_rot / 6, n_rot / 6, 0]
        } else {
            [0; 4]
        },
        output_gate: gated,
    }
}

/// A cache as the GPU stores it (f16 values packed two per word, or f32), and the values
/// the GPU will read back from it.
fn cache_contents(values: &[f32], f16_cache: bool) -> (Vec<u8>, Vec<f32>) {
    if f16_cache {
        let halves: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        let bytes = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        (bytes, halves.iter().map(|h| h.to_f32()).collect())
    } else {
        (bytemuck::cast_slice(values).to_vec(), values.to_vec())
    }
}

fn read_cache(gpu: &GpuContext, b: &wgpu::Buffer, n: usize, f16_cache: bool) -> Vec<f32> {
    if f16_cache {
        read_f32(gpu, b, n / 2)
            .unwrap()
            .iter()
            .flat_map(|w| {
                let bits = w.to_bits();
                [
                    f16::from_bits(bits as u16).to_f32(),
                    f16::from_bits((bits >> 16) as u16).to_f32(),
                ]
            })
            .collect()
    } else {
        read_f32(gpu, b, n).unwrap()
    }
}

const GEOMETRIES: [(u32, u32, u32, u32, bool); 5] = [
    (4, 2, 16, 8, true),      // the tiny qwen35 models
    (4, 4, 64, 64, false),    // qwen3moe-like: whole-head rotary, no gate
    (16, 2, 256, 64, true),   // Qwen3.5's attention heads
    (32, 2, 256, 64, true),   // Qwen3.5-122B/397B: two flash_decode workgroups a KV head
    (12, 2, 128, 128, false), // 6 heads a KV head: 6 a workgroup, not a power of two
];

/// f32 math: atol 1e-5, rtol 1e-4 (sin/cos of large angles on the GPU); the f16 cache holds
/// what the reference computed rounded to f16: rtol 2e-3 (f16's 11-bit mantissa, plus the
/// rounding of a value that differed in its last f32 bits).
fn qk_cases(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    for (nh, nkv, hd, n_rot, gated) in GEOMETRIES {
        let a = geometry(nh, nkv, hd, n_rot, gated);
        let freqs = rope_frequencies(n_rot as usize, a.rope_base, a.rope_sections);
        let (nh_, nkv_, hd_) = (nh as usize, nkv as usize, hd as usize);
        let per_head = if gated { 2 * hd_ } else { hd_ };
        for f16_cache in [true, false] {
            // A batched step's sequence reads its row (first_row) of the batch's inputs.
            for (pos0, n_tokens, first_row) in
                [(0usize, 1usize, 0usize), (70, 3, 0), (5, 65, 0), (9, 1, 2)]
            {
                let capacity = pos0 + n_tokens;
                let rows = first_row + n_tokens;
                let q_in = random(rows * nh_ * per_head, 2.0, rng);
                let k_in = random(rows * nkv_ * hd_, 2.0, rng);
                let v_in = random(rows * nkv_ * hd_, 2.0, rng);
                let q_norm: Vec<f32> = random(hd_, 0.2, rng).iter().map(|v| 1.0 + v).collect();
                let k_norm: Vec<f32> = random(hd_, 0.2, rng).iter().map(|v| 1.0 + v).collect();
                let words = capacity * nkv_ * hd_ / if f16_cache { 2 } else { 1 };
                let (kc, vc) = (f32_buffer(gpu, "k", words), f32_buffer(gpu, "v", words));
                let q_out = f32_buffer(gpu, "q", n_tokens * nh_ * hd_);
                let step_buf = f32_buffer(gpu, "step", 2);
                let step = AttentionStep {
                    config: &a,
                    kv_f16: f16_cache,
                    n_tokens: n_tokens as u32,
                    pos0: pos0 as u32,
                    first_row: first_row as u32,
                    step: &step_buf,
                };
                let io = QkNormRopeIo {
                    q_in: &buf(gpu, &q_in),
                    k_in: &buf(gpu, &k_in),
                    v_in: &buf(gpu, &v_in),
                    q_norm: &buf(gpu, &q_norm),
                    k_norm: &buf(gpu, &k_norm),
                    freqs: &buf(gpu, &freqs),
                    q_out: &q_out,
                    k_cache: &kc,
                    v_cache: &vc,
                    step: &step_buf,
                };
                let d = qk_norm_rope(gpu, cache, step, EPS, io).unwrap();
                run_dispatches(gpu, &[&d]);

                let mut q_ref = Vec::new();
                for t in 0..n_tokens {
                    for h in 0..nh_ {
                        let start = (first_row + t) * nh_ * per_head + h * per_head;
                        let mut head = rms_norm(&q_in[start..start + hd_], &q_norm, EPS);
                        rope_neox(&mut head, pos0 + t, &freqs);
                        q_ref.extend(head);
                    }
                }
                let what = format!("qk_norm_rope {nh}/{nkv}x{hd} rot {n_rot} f16 {f16_cache} pos {pos0}+{n_tokens} row {first_row}");
                assert_close(
                    &what,
                    &read_f32(gpu, &q_out, q_ref.len()).unwrap(),
                    &q_ref,
                    1e-5,
                    1e-4,
                );
                let mut k_ref = vec![0.0f32; capacity * nkv_ * hd_];
                let mut v_ref = vec![0.0f32; capacity * nkv_ * hd_];
                for t in 0..n_tokens {
                    for h in 0..nkv_ {
                        let src = ((first_row + t) * nkv_ + h) * hd_;
                        let dst = ((pos0 + t) * nkv_ + h) * hd_;
                        let mut head = rms_norm(&k_in[src..src + hd_], &k_norm, EPS);
                        rope_neox(&mut head, pos0 + t, &freqs);
                        k_ref[dst..dst + hd_].copy_from_slice(&head);
                        v_ref[dst..dst + hd_].copy_from_slice(&v_in[src..src + hd_]);
                    }
                }
                let (atol, rtol) = if f16_cache {
                    (1e-4, 2e-3)
                } else {
                    (1e-5, 1e-4)
                };
                let n = k_ref.len();
                assert_close(
                    &format!("{what} K"),
                    &read_cache(gpu, &kc, n, f16_cache),
                    &k_ref,
                    atol,
                    rtol,
                );
                assert_close(
                    &format!("{what} V"),
                    &read_cache(gpu, &vc, n, f16_cache),
                    &v_ref,
                    atol,
                    rtol,
                );
            }
        }
    }
}

#[test]
fn qk_norm_rope_matches_reference() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(21);
    for_each_variant(&mut gpu, |gpu| qk_cases(gpu, &cache, &mut rng));
}

/// The reference attends over the same (f16-rounded, for an f16 cache) keys and values:
/// only f32 summation order and exp differ: atol 1e-5, rtol 1e-4 for flash_decode and
/// prefill's f32 form. `prefill_tol` is (atol, rtol) for the prefill kernel the adapter's
/// forms pick; `decode` runs flash_decode too.
fn flash_cases(
    gpu: &GpuContext,
    cache: &PipelineCache,
    rng: &mut SplitMix64,
    decode: bool,
    prefill_tol: (f32, f32),
) {
    for (nh, nkv, hd, n_rot, gated) in GEOMETRIES {
        let a = geometry(nh, nkv, hd, n_rot, gated);
        let (nh_, nkv_, hd_) = (nh as usize, nkv as usize, hd as usize);
        let per_head = if gated { 2 * hd_ } else { hd_ };
        for f16_cache in [true, false] {
            // One chunk, a partial second chunk, several chunks; a decode step and blocks.
            for (pos0, n_tokens) in [
                (0usize, 1usize),
                (63, 1),
                (64, 1),
                (200, 1),
                (0, 65),
                (100, 7),
            ] {
                let capacity = pos0 + n_tokens;
                let row = nkv_ * hd_;
                let q = random(n_tokens * nh_ * hd_, 1.0, rng);
                let q_in = random(n_tokens * nh_ * per_head, 3.0, rng);
                let (k_bytes, k_vals) =
                    cache_contents(&random(capacity * row, 1.0, rng), f16_cache);
                let (v_bytes, v_vals) =
                    cache_contents(&random(capacity * row, 1.0, rng), f16_cache);
                let (kc, vc) = (
                    storage_buffer(gpu, "k", &k_bytes),
                    storage_buffer(gpu, "v", &v_bytes),
                );
                let n_chunks = capacity.div_ceil(FLASH_CHUNK as usize);
                let partials = f32_buffer(gpu, "partials", n_tokens * nh_ * n_chunks * (hd_ + 2));
                let out = f32_buffer(gpu, "out", n_tokens * nh_ * hd_);
                let (qb, qib) = (buf(gpu, &q), buf(gpu, &q_in));
                let step_buf = f32_buffer(gpu, "step", 2);
                let step = AttentionStep {
                    config: &a,
                    kv_f16: f16_cache,
                    n_tokens: n_tokens as u32,
                    pos0: pos0 as u32,
                    first_row: 0,
                    step: &step_buf,
                };
                let buffers = FlashDecodeBuffers {
                    q: &qb,
                    k_cache: &kc,
                    v_cache: &vc,
                    partials: &partials,
                    q_in: &qib,
                    out: &out,
                };
                if decode {
                    let fa = FlashDecode::new(gpu, cache, step, buffers).unwrap();
                    run_dispatches(gpu, &[&fa.partial, &fa.combine]);
                }

                let mut expect = Vec::new();
                for t in 0..n_tokens {
                    let n_pos = pos0 + t + 1;
                    let qt = &q[t * nh_ * hd_..(t + 1) * nh_ * hd_];
                    let mut o = flash_decode(
                        qt,
                        &k_vals[..n_pos * row],
                        &v_vals[..n_pos * row],
                        nh_,
                        nkv_,
                        hd_,
                    );
                    if gated {
                        for h in 0..nh_ {
                            let gate = &q_in[t * nh_ * per_head + h * per_head + hd_..][..hd_];
                            for (x, g) in o[h * hd_..(h + 1) * hd_].iter_mut().zip(gate) {
                                *x *= sigmoid(*g);
                            }
                        }
                    }
                    expect.extend(o);
                }
                let what = format!("flash attention {nh}/{nkv}x{hd} gated {gated} f16 {f16_cache} pos {pos0}+{n_tokens}");
                if decode {
                    assert_close(
                        &what,
                        &read_f32(gpu, &out, expect.len()).unwrap(),
                        &expect,
                        1e-5,
                        1e-4,
                    );
                }
                // The tiled prefill kernel computes the same for the same block.
                let tiled = f32_buffer(gpu, "tiled", n_tokens * nh_ * hd_);
                let io = FlashPrefillIo {
                    q: &qb,
                    k_cache: &kc,
                    v_cache: &vc,
                    q_in: &qib,
                    out: &tiled,
                    step: &step_buf,
                };
                let form = gqa_shape(gpu, &step);
                let d = flash_prefill(gpu, cache, step, io).unwrap();
                run_dispatches(gpu, &[&d]);
                let got = read_f32(gpu, &tiled, expect.len()).unwrap();
                let what = format!("prefill ({form:?}) {what}");
                assert_close(&what, &got, &expect, prefill_tol.0, prefill_tol.1);
            }
        }
    }
}

/// A batched step's sequence reads its gate from its row of the batch's q_in and writes its
/// row of the batch's output, leaving the other rows as they were: atol 1e-5, rtol 1e-4.
#[test]
fn flash_decode_writes_its_row_of_a_batch() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(23);
    let (nh, nkv, hd) = (16usize, 2usize, 256usize);
    let a = geometry(nh as u32, nkv as u32, hd as u32, 64, true);
    let (pos0, first_row, batch) = (70usize, 2usize, 4usize);
    let row = nkv * hd;
    let q = random(nh * hd, 1.0, &mut rng);
    let q_in = random(batch * nh * 2 * hd, 3.0, &mut rng);
    let (k_bytes, k_vals) = cache_contents(&random((pos0 + 1) * row, 1.0, &mut rng), true);
    let (v_bytes, v_vals) = cache_contents(&random((pos0 + 1) * row, 1.0, &mut rng), true);
    let (kc, vc) = (
        storage_buffer(&gpu, "k", &k_bytes),
        storage_buffer(&gpu, "v", &v_bytes),
    );
    let n_chunks = (pos0 + 1).div_ceil(FLASH_CHUNK as usize);
    let partials = f32_buffer(&gpu, "partials", nh * n_chunks * (hd + 2));
    let before = random(batch * nh * hd, 1.0, &mut rng);
    let out = buf(&gpu, &before);
    let (qb, qib) = (buf(&gpu, &q), buf(&gpu, &q_in));
    let step_buf = f32_buffer(&gpu, "step", 2);
    let step = AttentionStep {
        config: &a,
        kv_f16: true,
        n_tokens: 1,
        pos0: pos0 as u32,
        first_row: first_row as u32,
        step: &step_buf,
    };
    let buffers = FlashDecodeBuffers {
        q: &qb,
        k_cache: &kc,
        v_cache: &vc,
        partials: &partials,
        q_in: &qib,
        out: &out,
    };
    let fa = FlashDecode::new(&gpu, &cache, step, buffers).unwrap();
    run_dispatches(&gpu, &[&fa.partial, &fa.combine]);
    let n = pos0 + 1;
    let mut expect = before.clone();
    let mut o = flash_decode(&q, &k_vals[..n * row], &v_vals[..n * row], nh, nkv, hd);
    for h in 0..nh {
        let gate = &q_in[(first_row * nh + h) * 2 * hd + hd..][..hd];
        for (x, g) in o[h * hd..(h + 1) * hd].iter_mut().zip(gate) {
            *x *= sigmoid(*g);
        }
    }
    expect[first_row * nh * hd..(first_row + 1) * nh * hd].copy_from_slice(&o);
    let got = read_f32(&gpu, &out, expect.len()).unwrap();
    assert_close("flash_decode row 2 of 4", &got, &expect, 1e-5, 1e-4);
}

/// flash_decode and flash_prefill's f32 form.
#[test]
fn flash_decode_and_flash_prefill_match_reference() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    gpu.features.matmul = MatmulForm::Tiled;
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(22);
    let tol = (1e-5, 1e-4);
    for_each_variant(&mut gpu, |gpu| {
        flash_cases(gpu, &cache, &mut rng, true, tol)
    });
}

/// flash_prefill's GPU form (`flash_prefill_gqa`), in every cooperative form the adapter
/// runs (its matrices; the emulation where it has f16), for every geometry whose heads a KV
/// head divide its 32 rows (the others fall back to the f32 form, which must still match).
/// Queries and keys go to f16 for the scores (each rounded by at most 2^-11: a score off by
/// up to 1e-3 of its sum of |q k| / sqrt(HD)); outputs within atol and rtol 2e-3 (lavapipe's
/// largest error here: 4e-4 of the value).
#[test]
fn flash_prefill_gqa_matches_reference() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(23);
    let tol = (2e-3, 2e-3);
    for_each_matmul_form(&mut gpu, |gpu, _| {
        if !matches!(
            gpu.features.matmul,
            MatmulForm::Coop { .. } | MatmulForm::CoopEmulated
        ) {
            return;
        }
        for (nh, nkv, hd, _, gated) in GEOMETRIES {
            let a = geometry(nh, nkv, hd, hd, gated);
            let smallest = GQA_KEY_TILES[GQA_KEY_TILES.len() - 1];
            let fits =
                gqa_workgroup_bytes(hd, smallest) <= gpu.limits.max_compute_workgroup_storage_size;
            let step_buf = f32_buffer(gpu, "step", 2);
            let step = AttentionStep {
                config: &a,
                kv_f16: true,
                n_tokens: 1,
                pos0: 0,
                first_row: 0,
                step: &step_buf,
            };
            let shape = gqa_shape(gpu, &step);
            let shaped = GQA_ROWS % (nh / nkv) == 0;
            assert_eq!(shape.is_some(), fits && shaped, "{nh}/{nkv}x{hd}");
            eprintln!(
                "{}: {nh}/{nkv}x{hd} ({} heads a KV head) runs {shape:?}; {} bytes of workgroup memory offered",
                gpu.info.name,
                nh / nkv,
                gpu.limits.max_compute_workgroup_storage_size
            );
        }
        flash_cases(gpu, &cache, &mut rng, false, tol);
    });
}
