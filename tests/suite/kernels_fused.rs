//! The fused decode kernels against the composition of the reference functions they
//! replace: the multi-matrix matvec with its folded RMSNorm and residual add
//! (`rms_norm`, then `matvec` per matrix, plus y), `moe_gate_up` (`moe_route`, `rms_norm`,
//! each slot's gate and up `matvec`, `silu(g) * u`) and `moe_down` (each slot's down `matvec`, the
//! router-weighted sum, the sigmoid-gated shared expert, plus the stream).
//!
//! Bound: a GPU dot may sum in any order, so each output is held to 3e-5 of the sum of
//! |w x| of its terms (the matvec's f32 bound with room for the norm's own rounding), plus
//! 1e-6 of what it was added to.

use qwen_wgpu::loader::dequant::dequantize;
use qwen_wgpu::loader::GgmlType;
use qwen_wgpu::model::reference::linear::matvec;
use qwen_wgpu::model::reference::moe::moe_route;
use qwen_wgpu::model::reference::norm::{gated_rms_norm, rms_norm, sigmoid, silu};
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::experts::{ExpertTable, ExpertTensor};
use qwen_wgpu::runtime::ops::linear::{
    ExpertWeights, GatedHeadNorm, InputNorm, Matvec, MatvecInput, Projection, RowNorm,
};
use qwen_wgpu::runtime::ops::moe::{
    moe_down, moe_gate_up, DownBuffers, ExpertRows, GateUpBuffers, RouteShape, SharedDown,
    SharedGateUp,
};
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{read_f32, storage_buffer, MatrixShape, QuantMatrix};
use qwen_wgpu::runtime::GpuContext;

use crate::common::{for_each_matvec_grid, for_each_variant, gpu_or_skip, run_dispatches};
use crate::kernels_linear::random_weights;

const EPS: f32 = 1e-6;

fn random(n: usize, scale: f32, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| scale * rng.symmetric_f32()).collect()
}

fn buf(gpu: &GpuContext, v: &[f32]) -> wgpu::Buffer {
    storage_buffer(gpu, "t", bytemuck::cast_slice(v))
}

/// A random matrix of `ty`, uploaded in pieces of at most `max_piece` bytes, and its
/// dequantized values.
struct TestMatrix {
    m: QuantMatrix,
    values: Vec<f32>,
    bytes: Vec<u8>,
    /// One expert's (or the matrix's) shape.
    shape: MatrixShape,
}

/// `t`'s experts under `table`: every one resident in expert order (`pool` None), or the
/// experts of `pool` in a VRAM pool in that slot order and all of them in host memory.
fn expert_tensor(
    gpu: &GpuContext,
    t: &TestMatrix,
    pool: Option<&[u32]>,
    table: &ExpertTable,
) -> ExpertTensor {
    match pool {
        None => ExpertTensor::with_table(t.m.clone(), t.shape.rows, table.clone()),
        Some(slots) => {
            let placed = (table.clone(), slots);
            let shape = (t.shape, table.n_expert);
            ExpertTensor::split(gpu, "w", shape, &t.bytes, u64::MAX, placed).unwrap()
        }
    }
}

/// The location table of `pool` (every expert resident when `None`).
fn expert_table(gpu: &GpuContext, n_expert: usize, pool: Option<&[u32]>) -> ExpertTable {
    let all: Vec<u32> = (0..n_expert as u32).collect();
    ExpertTable::with_slots(gpu, n_expert as u32, pool.unwrap_or(&all)).unwrap()
}

fn test_matrix(
    gpu: &GpuContext,
    ty: GgmlType,
    experts: usize,
    rows: usize,
    cols: usize,
    max_piece: u64,
    rng: &mut SplitMix64,
) -> TestMatrix {
    let bytes = random_weights(ty, experts * rows, cols, rng);
    let values = dequantize(ty, &bytes, experts * rows * cols).unwrap();
    let shape = MatrixShape {
        ty,
        cols: cols as u32,
        rows: rows as u32,
    };
    let m = if experts == 1 {
        QuantMatrix::upload(gpu, "w", shape, &bytes, max_piece).unwrap()
    } else {
        QuantMatrix::upload_experts(gpu, "w", shape, experts as u32, &bytes, max_piece).unwrap()
    };
    TestMatrix {
        m,
        values,
        bytes,
        shape,
    }
}

/// `row . x` and the sum of |w x| of the dot (its rounding scale).
fn dot_and_scale(row: &[f32], x: &[f32]) -> (f32, f32) {
    let d = matvec(row, x, 1, x.len())[0];
    let s = row.iter().zip(x).map(|(a, b)| (a * b).abs()).sum();
    (d, s)
}

fn assert_within(what: &str, got: f32, want: f32, tol: f32) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: gpu {got} reference {want} (tol {tol})"
    );
}

#[test]
fn fused_matvec_matches_rms_norm_then_each_matvec_then_add() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(51);
    for_each_variant(&mut gpu, |gpu| fused_matvec_cases(gpu, &cache, &mut rng));
    // The GPU forms: one row per workgroup, and a grid that takes 4.
    for_each_matvec_grid(&mut gpu, &[60, 4096], |gpu| {
        fused_matvec_cases(gpu, &cache, &mut rng)
    });
}

fn fused_matvec_cases(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    use GgmlType::*;
    let cols = 512;
    // A GDN input's mix (q5_K qkv, q4_K gate, f32 and bf16 beta and alpha); five matrices
    // (two dispatches), one of them split in pieces; one matrix alone.
    let cases: [&[(GgmlType, usize, u64)]; 3] = [
        &[
            (Q5K, 37, u64::MAX),
            (Q4K, 16, u64::MAX),
            (F32, 5, u64::MAX),
            (Bf16, 3, u64::MAX),
        ],
        &[
            (Q6K, 9, u64::MAX),
            (Q4K, 40, 10 * 288),
            (Q8_0, 6, u64::MAX),
            (F16, 2, u64::MAX),
        ],
        &[(Q4K, 21, u64::MAX)],
    ];
    for (case, mats) in cases.iter().enumerate() {
        for (norm, add) in [(true, false), (false, true), (true, true), (false, false)] {
            let x_offset = 8;
            let x = random(x_offset + cols, 1.0, rng);
            let nw = random(cols, 1.0, rng);
            let xb = buf(gpu, &x);
            let nwb = buf(gpu, &nw);
            let ms: Vec<TestMatrix> = mats
                .iter()
                .map(|&(ty, rows, piece)| test_matrix(gpu, ty, 1, rows, cols, piece, rng))
                .collect();
            // Each matrix's output at an offset of its own buffer, prefilled for the add.
            let y0: Vec<Vec<f32>> = mats
                .iter()
                .map(|&(_, r, _)| random(r + 3, 1.0, rng))
                .collect();
            let ybs: Vec<wgpu::Buffer> = y0.iter().map(|y| buf(gpu, y)).collect();
            let outs: Vec<Projection<'_>> = ms
                .iter()
                .zip(&ybs)
                .map(|(t, y)| Projection {
                    w: &t.m,
                    y,
                    y_offset: 3,
                })
                .collect();
            let input = MatvecInput {
                x: &xb,
                x_offset: x_offset as u32,
                norm: norm.then_some(InputNorm::Row(RowNorm { w: &nwb, eps: EPS })),
            };
            let op = Matvec::new(gpu, cache, input, &outs, add).unwrap();
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                op.encode(&mut pass);
            }
            gpu.queue.submit([enc.finish()]);
            let xs = &x[x_offset..];
            let xn = if norm {
                rms_norm(xs, &nw, EPS)
            } else {
                xs.to_vec()
            };
            for (i, (t, &(ty, rows, _))) in ms.iter().zip(mats.iter()).enumerate() {
                let got = read_f32(gpu, &ybs[i], rows + 3).unwrap();
                for r in 0..rows {
                    let (d, scale) = dot_and_scale(&t.values[r * cols..(r + 1) * cols], &xn);
                    let base = if add { y0[i][3 + r] } else { 0.0 };
                    let what = format!("case {case} {ty} norm {norm} add {add} matrix {i} row {r}");
                    assert_within(
                        &what,
                        got[3 + r],
                        base + d,
                        3e-5 * scale + 1e-6 * base.abs(),
                    );
                }
                assert_eq!(
                    got[..3],
                    y0[i][..3],
                    "case {case} matrix {i}: wrote before its rows"
                );
            }
        }
    }
}

#[test]
fn moe_gate_up_matches_route_rms_norm_expert_matvecs_and_swiglu() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(52);
    for_each_variant(&mut gpu, |gpu| gate_up_cases(gpu, &cache, &mut rng));
    for_each_matvec_grid(&mut gpu, &[512], |gpu| gate_up_cases(gpu, &cache, &mut rng));
}

fn gate_up_cases(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    use GgmlType::*;
    let (cols, n_expert, fe, k) = (256usize, 6usize, 64usize, 3usize);
    // Fused gate_up (q4_K) with a wider shared expert of other types, weights renormalised;
    // separate gate and up of two types without one, as the softmax gives them; every
    // expert resident, or the third pick and the first (in that slot order) resident and
    // the rest read from host memory.
    let cases = [(true, Some(96usize)), (false, None)];
    for ((fused, shared_width), split) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
        let renormalise = fused;
        let logits = random(n_expert, 3.0, rng);
        let (picks, picked_w) = moe_route(&logits, k, renormalise);
        let ids: Vec<u32> = picks.iter().map(|&e| e as u32).collect();
        let x = random(cols, 1.0, rng);
        let nw = random(cols, 1.0, rng);
        let xn = rms_norm(&x, &nw, EPS);
        let (gate, up) = if fused {
            let gu = test_matrix(gpu, Q4K, n_expert, 2 * fe, cols, u64::MAX, rng);
            (gu, None)
        } else {
            let g = test_matrix(gpu, Q5K, n_expert, fe, cols, u64::MAX, rng);
            (
                g,
                Some(test_matrix(gpu, Q8_0, n_expert, fe, cols, u64::MAX, rng)),
            )
        };
        let shared = shared_width.map(|fs| {
            (
                test_matrix(gpu, Q8_0, 1, fs, cols, u64::MAX, rng),
                test_matrix(gpu, Q6K, 1, fs, cols, u64::MAX, rng),
            )
        });
        let h_stride = fe.max(shared_width.unwrap_or(0));
        let slots = k + usize::from(shared.is_some());
        let (xb, nwb) = (buf(gpu, &x), buf(gpu, &nw));
        let idb = storage_buffer(gpu, "ids", bytemuck::cast_slice(&[0u32; 3]));
        let (lb, wb) = (buf(gpu, &logits), buf(gpu, &[0.0; 3]));
        let hb = buf(gpu, &vec![0.0; slots * h_stride]);
        let pool = [ids[2], ids[0]];
        let pool = split.then_some(&pool[..]);
        let table = expert_table(gpu, n_expert, pool);
        let gate_t = expert_tensor(gpu, &gate, pool, &table);
        let up_t = up.as_ref().map(|u| expert_tensor(gpu, u, pool, &table));
        let rows = |w, first| ExpertRows {
            w,
            first_row: first,
            rows: fe as u32,
        };
        let fe32 = fe as u32;
        let pair = match &up_t {
            None => (rows(&gate_t, 0), rows(&gate_t, fe32)),
            Some(u) => (rows(&gate_t, 0), rows(u, 0)),
        };
        let sh = shared.as_ref().map(|(g, u)| SharedGateUp {
            gate: &g.m,
            up: &u.m,
        });
        let b = GateUpBuffers {
            x: &xb,
            norm_w: &nwb,
            eps: EPS,
            logits: &lb,
            ids: &idb,
            route_w: &wb,
            h: &hb,
            h_stride: h_stride as u32,
        };
        let route = RouteShape {
            n_expert: n_expert as u32,
            k: k as u32,
            n_tokens: 1,
            renormalise,
        };
        let d = moe_gate_up(gpu, cache, route, pair, sh, b).unwrap();
        run_dispatches(gpu, &[&d]);
        let got = read_f32(gpu, &hb, slots * h_stride).unwrap();
        // The picks exactly; their weights as moe_route's test holds them (the GPU's exp).
        let got_ids: Vec<u32> = read_f32(gpu, &idb, k)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(got_ids, ids, "fused {fused}: the picks");
        // Each pick counted, and the one outside the pool as a miss.
        let counts = read_f32(gpu, &table.counts, n_expert + 1).unwrap();
        let counts: Vec<u32> = counts.iter().map(|v| v.to_bits()).collect();
        for e in 0..n_expert as u32 {
            let want = u32::from(ids.contains(&e));
            assert_eq!(
                counts[e as usize], want,
                "fused {fused}: uses of expert {e}"
            );
        }
        assert_eq!(
            counts[n_expert],
            if split { 1 } else { 0 },
            "fused {fused}: misses"
        );
        let got_w = read_f32(gpu, &wb, k).unwrap();
        for (j, (&g, &want)) in got_w.iter().zip(&picked_w).enumerate() {
            assert_within(
                &format!("fused {fused} weight {j}"),
                g,
                want,
                1e-7 + 1e-5 * want,
            );
        }
        // (gate rows, up rows, width) of each slot.
        for s in 0..slots {
            let (g_rows, u_rows, width): (&[f32], &[f32], usize) = if s < k {
                let e = ids[s] as usize;
                match &up {
                    None => {
                        let slab = &gate.values[e * 2 * fe * cols..(e + 1) * 2 * fe * cols];
                        (&slab[..fe * cols], &slab[fe * cols..], fe)
                    }
                    Some(u) => (
                        &gate.values[e * fe * cols..(e + 1) * fe * cols],
                        &u.values[e * fe * cols..(e + 1) * fe * cols],
                        fe,
                    ),
                }
            } else {
                let (g, u) = shared.as_ref().unwrap();
                (&g.values, &u.values, shared_width.unwrap())
            };
            for r in 0..width {
                let (gv, ga) = dot_and_scale(&g_rows[r * cols..(r + 1) * cols], &xn);
                let (uv, ua) = dot_and_scale(&u_rows[r * cols..(r + 1) * cols], &xn);
                let want = silu(gv) * uv;
                // d silu / dg is at most 1.1 in magnitude.
                let tol = 3e-5 * (1.1 * ga * uv.abs() + ua * silu(gv).abs()) + 1e-7;
                let what = format!("fused {fused} split {split} slot {s} row {r}");
                assert_within(&what, got[s * h_stride + r], want, tol);
            }
        }
    }
}

#[test]
fn moe_down_matches_weighted_expert_matvecs_plus_the_stream() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(53);
    for_each_variant(&mut gpu, |gpu| down_cases(gpu, &cache, &mut rng));
    for_each_matvec_grid(&mut gpu, &[512], |gpu| down_cases(gpu, &cache, &mut rng));
}

fn down_cases(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    use GgmlType::*;
    let (n_embd, n_expert, fe, k) = (96usize, 5usize, 256usize, 3usize);
    let ids: [u32; 3] = [2, 4, 0];
    // Every expert resident, or experts 0 and 2 in slots 0 and 1 and expert 4 read from
    // host memory.
    let pool = [0u32, 2];
    for (shared_width, pool) in [Some(512usize), None]
        .into_iter()
        .flat_map(|w| [(w, None), (w, Some(&pool[..]))])
    {
        let h_stride = fe.max(shared_width.unwrap_or(0));
        let slots = k + usize::from(shared_width.is_some());
        let h = random(slots * h_stride, 1.0, rng);
        let route_w = [0.5f32, 0.3, 0.2];
        let logit = [0.7f32];
        let y0 = random(n_embd, 1.0, rng);
        let down = test_matrix(gpu, Q6K, n_expert, n_embd, fe, u64::MAX, rng);
        let sd = shared_width.map(|fs| test_matrix(gpu, Q4K, 1, n_embd, fs, u64::MAX, rng));
        let (hb, yb) = (buf(gpu, &h), buf(gpu, &y0));
        let idb = storage_buffer(gpu, "ids", bytemuck::cast_slice(&ids));
        let (wb, lb) = (buf(gpu, &route_w), buf(gpu, &logit));
        let shared = sd.as_ref().map(|t| SharedDown {
            down: &t.m,
            logit: &lb,
        });
        let b = DownBuffers {
            h: &hb,
            h_stride: h_stride as u32,
            ids: &idb,
            route_w: &wb,
            y: &yb,
        };
        let table = expert_table(gpu, n_expert, pool);
        let down_t = expert_tensor(gpu, &down, pool, &table);
        let experts = ExpertWeights { w: &down_t };
        let d = moe_down(gpu, cache, k as u32, experts, shared, b).unwrap();
        run_dispatches(gpu, &[&d]);
        let got = read_f32(gpu, &yb, n_embd).unwrap();
        for r in 0..n_embd {
            let (mut want, mut scale) = (y0[r], 0.0);
            for (j, &e) in ids.iter().enumerate() {
                let row = &down.values[(e as usize * n_embd + r) * fe..][..fe];
                let (d, a) = dot_and_scale(row, &h[j * h_stride..j * h_stride + fe]);
                want += route_w[j] * d;
                scale += route_w[j] * a;
            }
            if let (Some(t), Some(fs)) = (&sd, shared_width) {
                let hs = &h[k * h_stride..k * h_stride + fs];
                let (d, a) = dot_and_scale(&t.values[r * fs..(r + 1) * fs], hs);
                want += sigmoid(logit[0]) * d;
                scale += a;
            }
            let what = format!("shared {shared_width:?} pool {pool:?} row {r}");
            assert_within(&what, got[r], want, 3e-5 * scale + 1e-6 * y0[r].abs());
        }
    }
}

/// The Gated DeltaNet output norm folded into ssm_out: heads of 32 floats read as
/// `x_h / rms(x_h) * w * silu(z_h)`, added into y (reference `gated_rms_norm` per head,
/// then `matvec`, plus y).
#[test]
fn matvec_with_gated_head_norm_matches_gated_rms_norm_then_matvec() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(54);
    for_each_variant(&mut gpu, |gpu| gated_head_cases(gpu, &cache, &mut rng));
    for_each_matvec_grid(&mut gpu, &[512], |gpu| {
        gated_head_cases(gpu, &cache, &mut rng)
    });
}

fn gated_head_cases(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    let (head_dim, heads, rows) = (32usize, 8usize, 19usize);
    let cols = head_dim * heads;
    for ty in [GgmlType::Q4K, GgmlType::Q8_0] {
        let x = random(cols, 1.0, rng);
        let z = random(cols, 2.0, rng);
        let nw = random(head_dim, 1.0, rng);
        let y0 = random(rows, 1.0, rng);
        let t = test_matrix(gpu, ty, 1, rows, cols, u64::MAX, rng);
        let (xb, zb, nwb, yb) = (buf(gpu, &x), buf(gpu, &z), buf(gpu, &nw), buf(gpu, &y0));
        let input = MatvecInput {
            x: &xb,
            x_offset: 0,
            norm: Some(InputNorm::GatedHeads(GatedHeadNorm {
                w: &nwb,
                z: &zb,
                head_dim: head_dim as u32,
                eps: EPS,
            })),
        };
        let out = Projection {
            w: &t.m,
            y: &yb,
            y_offset: 0,
        };
        let op = Matvec::new(gpu, cache, input, &[out], true).unwrap();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            op.encode(&mut pass);
        }
        gpu.queue.submit([enc.finish()]);
        let got = read_f32(gpu, &yb, rows).unwrap();
        let xn: Vec<f32> = (0..heads)
            .flat_map(|h| {
                let r = h * head_dim..(h + 1) * head_dim;
                gated_rms_norm(&x[r.clone()], &nw, &z[r], EPS)
            })
            .collect();
        for r in 0..rows {
            let (d, scale) = dot_and_scale(&t.values[r * cols..(r + 1) * cols], &xn);
            let what = format!("{ty} gated heads row {r}");
            assert_within(&what, got[r], y0[r] + d, 3e-5 * scale + 1e-6 * y0[r].abs());
        }
    }
}
