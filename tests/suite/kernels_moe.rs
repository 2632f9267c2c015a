//! `shaders/moe/` and the expert-indexed matvec against the reference: routing (softmax,
//! top-k, renormalisation) on the GPU, the routed experts' matvecs with ids read on the GPU
//! (whole and split into pieces), SwiGLU and the weighted combine with the shared expert.

use qwen_wgpu::loader::dequant::dequantize;
use qwen_wgpu::loader::GgmlType;
use qwen_wgpu::model::reference::linear::matvec;
use qwen_wgpu::model::reference::moe::moe_route;
use qwen_wgpu::model::reference::norm::{sigmoid, silu};
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::experts::{ExpertTable, ExpertTensor};
use qwen_wgpu::runtime::ops::linear::matmul::TOKEN_TILES;
use qwen_wgpu::runtime::ops::linear::matmul_experts::token_tile;
use qwen_wgpu::runtime::ops::{linear, moe, Dispatch};
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer, MatrixShape, QuantMatrix};
use qwen_wgpu::runtime::GpuContext;

use crate::common::{
    assert_close, for_each_matmul_form, for_each_matvec_grid, for_each_variant, gpu_or_skip,
    run_dispatches,
};
use crate::kernels_linear::random_weights;

fn random(n: usize, scale: f32, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| scale * rng.symmetric_f32()).collect()
}

fn buf(gpu: &GpuContext, v: &[f32]) -> wgpu::Buffer {
    storage_buffer(gpu, "t", bytemuck::cast_slice(v))
}

/// Where slot outputs sit in a `y` buffer, and the shapes of the expert slabs.
struct SlotLayout {
    rows: usize,
    cols: usize,
    /// Slots sharing one x row (k for a token's experts, 1 when each slot has its own).
    group: usize,
    stride: usize,
    offset: usize,
}

/// Each slot's outputs against the CPU matvec of its expert `ids[s]` (dequantized `wf`)
/// with its input row: within `bound` of the row's sum of |w x| (the matvec's is 2e-5).
fn assert_slots_match(
    what: &str,
    bound: f32,
    got: &[f32],
    ids: &[u32],
    wf: &[f32],
    x: &[f32],
    l: &SlotLayout,
) {
    let (rows, cols) = (l.rows, l.cols);
    for (s, &e) in ids.iter().enumerate() {
        let we = &wf[e as usize * rows * cols..(e as usize + 1) * rows * cols];
        let xs = &x[(s / l.group) * cols..(s / l.group + 1) * cols];
        let expect = matvec(we, xs, rows, cols);
        for r in 0..rows {
            let abs: f32 = we[r * cols..(r + 1) * cols]
                .iter()
                .zip(xs)
                .map(|(a, b)| (a * b).abs())
                .sum();
            let g = got[l.offset + s * l.stride + r];
            assert!(
                (g - expect[r]).abs() <= bound * abs,
                "{what} slot {s} row {r}: {g} vs {}",
                expect[r]
            );
        }
    }
}

/// Ids must be identical; weights are f32 softmax values computed with the GPU's exp: atol
/// 1e-7, rtol 1e-5. With `ties` the logits take nine values only, so most experts tie with
/// others and the picks must break ties to the lower index as the reference does.
fn route_cases(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    for (n_expert, k, renormalise, ties) in [
        (8, 2, true, false),
        (256, 8, true, false),
        (512, 10, false, false),
        (128, 16, true, false),
        (512, 10, true, true),
        (64, 16, false, true),
    ] {
        let n_tokens = 3;
        let mut logits = random(n_tokens * n_expert, 4.0, rng);
        if ties {
            logits.iter_mut().for_each(|l| *l = l.round());
        }
        let ids = f32_buffer(gpu, "ids", n_tokens * k);
        let weights = f32_buffer(gpu, "w", n_tokens * k);
        let shape = moe::RouteShape {
            n_expert: n_expert as u32,
            k: k as u32,
            n_tokens: n_tokens as u32,
            renormalise,
        };
        // The even experts resident: the odd picks count as misses.
        let pool: Vec<u32> = (0..n_expert as u32).step_by(2).collect();
        let table = ExpertTable::with_slots(gpu, n_expert as u32, &pool).unwrap();
        let io = moe::MoeRouteIo {
            logits: &buf(gpu, &logits),
            ids: &ids,
            weights: &weights,
            location: &table.location,
            counts: &table.counts,
        };
        let d = moe::moe_route(gpu, cache, shape, io).unwrap();
        run_dispatches(gpu, &[&d]);
        let got_ids: Vec<u32> = read_f32(gpu, &ids, n_tokens * k)
            .unwrap()
            .iter()
            .map(|f| f.to_bits())
            .collect();
        let got_w = read_f32(gpu, &weights, n_tokens * k).unwrap();
        let counts: Vec<u32> = read_f32(gpu, &table.counts, n_expert + 1)
            .unwrap()
            .iter()
            .map(|f| f.to_bits())
            .collect();
        for e in 0..n_expert as u32 {
            let uses = got_ids.iter().filter(|&&i| i == e).count() as u32;
            assert_eq!(
                counts[e as usize], uses,
                "route {k} of {n_expert}: uses of {e}"
            );
        }
        let misses = got_ids.iter().filter(|&&i| i % 2 == 1).count() as u32;
        assert_eq!(counts[n_expert], misses, "route {k} of {n_expert}: misses");
        for t in 0..n_tokens {
            let (ref_ids, ref_w) =
                moe_route(&logits[t * n_expert..(t + 1) * n_expert], k, renormalise);
            let ref_ids: Vec<u32> = ref_ids.iter().map(|&e| e as u32).collect();
            assert_eq!(
                &got_ids[t * k..(t + 1) * k],
                &ref_ids[..],
                "route {k} of {n_expert}, token {t}"
            );
            assert_close(
                &format!("route weights {k} of {n_expert}"),
                &got_w[t * k..(t + 1) * k],
                &ref_w,
                1e-7,
                1e-5,
            );
        }
    }
}

#[test]
fn moe_route_matches_reference() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(31);
    for_each_variant(&mut gpu, |gpu| route_cases(gpu, &cache, &mut rng));
    let dummy = f32_buffer(&gpu, "d", 4);
    let io = moe::MoeRouteIo {
        logits: &dummy,
        ids: &dummy,
        weights: &dummy,
        location: &dummy,
        counts: &dummy,
    };
    for (n_expert, k) in [(600, 8), (8, 17)] {
        let shape = moe::RouteShape {
            n_expert,
            k,
            n_tokens: 1,
            renormalise: true,
        };
        assert!(moe::moe_route(&gpu, &cache, shape, io).is_err());
    }
}

/// Same bound as the plain matvec: 2e-5 of the sum of |w x| per row.
#[test]
fn matvec_experts_reads_the_routed_experts() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    // The CPU form (8 rows an invocation) and the GPU form (as few as fill 512).
    for_each_matvec_grid(&mut gpu, &[512], routed_expert_cases);
}

fn routed_expert_cases(gpu: &GpuContext) {
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(32);
    for ty in [GgmlType::Q4K, GgmlType::Q8_0, GgmlType::F16] {
        let (n_experts, rows, cols) = (6usize, 20usize, 256usize);
        let w = random_weights(ty, n_experts * rows, cols, &mut rng);
        let wf = dequantize(ty, &w, n_experts * rows * cols).unwrap();
        // Two tokens routed to 3 experts each (the prefill form): gate/up slots share their
        // token's input (group 3), down slots have their own (group 1).
        let slot_ids: [u32; 6] = [4, 0, 5, 1, 4, 3];
        let x = random(slot_ids.len() * cols, 1.0, &mut rng);
        let ids_buf = storage_buffer(gpu, "ids", bytemuck::cast_slice(&slot_ids));
        let xb = buf(gpu, &x);
        let slab = ty.row_bytes(cols as u64).unwrap() * rows as u64;
        // Whole, and split into pieces of 4 and 2 experts; every expert resident, or
        // experts 5, 1 and 3 in the pool (that slot order) and all in host memory.
        let placements = [None, Some(&[5u32, 1, 3][..])];
        for (max_piece, pool) in [u64::MAX, 4 * slab, 2 * slab + 7]
            .into_iter()
            .flat_map(|p| placements.map(|pool| (p, pool)))
        {
            let shape = MatrixShape {
                ty,
                cols: cols as u32,
                rows: rows as u32,
            };
            let m = placed_experts(gpu, (shape, n_experts), &w, max_piece, pool);
            for group in [1usize, 3] {
                let y = f32_buffer(gpu, "y", slot_ids.len() * rows);
                let input = linear::SlotInput {
                    buffer: &xb,
                    stride: cols as u32,
                    group: group as u32,
                };
                let output = linear::SlotOutput {
                    buffer: &y,
                    stride: rows as u32,
                    offset: 0,
                };
                let experts = linear::ExpertWeights { w: &m };
                let n_slots = slot_ids.len() as u32;
                let ds =
                    linear::matvec_experts(gpu, &cache, experts, n_slots, &ids_buf, input, output)
                        .unwrap();
                run_dispatches(gpu, &ds.iter().collect::<Vec<_>>());
                let got = read_f32(gpu, &y, slot_ids.len() * rows).unwrap();
                let layout = SlotLayout {
                    rows,
                    cols,
                    group,
                    stride: rows,
                    offset: 0,
                };
                let pieces = m.pieces().count();
                let what = format!("{ty} pieces {pieces} pool {pool:?} group {group}");
                assert_slots_match(&what, 2e-5, &got, &slot_ids, &wf, &x, &layout);
            }
        }
    }
}

/// Element-wise f32 with the GPU's exp: atol 1e-6, rtol 1e-5.
#[test]
fn swiglu_and_moe_combine_match_reference() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(33);
    swiglu_case(&gpu, &cache, &mut rng);
    combine_case(&gpu, &cache, &mut rng);
}

fn swiglu_case(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    let (slots, width) = (3usize, 100usize);
    // Fused layout: each slot holds [gate | up] (ffn_gate_up_exps rows, or two matvecs).
    let gate_up = random(slots * 2 * width, 4.0, rng);
    let h = f32_buffer(gpu, "h", slots * width);
    let shape = moe::SwigluShape {
        slots: slots as u32,
        width: width as u32,
        slot_stride: 2 * width as u32,
        up_offset: width as u32,
    };
    let io = moe::SwigluIo {
        gate_up: &buf(gpu, &gate_up),
        h: &h,
    };
    let d = moe::swiglu(gpu, cache, shape, io).unwrap();
    run_dispatches(gpu, &[&d]);
    let expect: Vec<f32> = (0..slots * width)
        .map(|i| {
            let (s, c) = (i / width, i % width);
            silu(gate_up[s * 2 * width + c]) * gate_up[s * 2 * width + width + c]
        })
        .collect();
    assert_close(
        "swiglu",
        &read_f32(gpu, &h, slots * width).unwrap(),
        &expect,
        1e-6,
        1e-5,
    );
}

fn combine_case(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    let (n_tokens, k, width) = (2usize, 3usize, 100usize);
    let e_out = random(n_tokens * k * width, 2.0, rng);
    let e_w = random(n_tokens * k, 1.0, rng);
    let sh_out = random(n_tokens * width, 2.0, rng);
    let sh_logit = random(n_tokens, 3.0, rng);
    for with_shared in [true, false] {
        let y = f32_buffer(gpu, "y", n_tokens * width);
        let (sb, lb) = (buf(gpu, &sh_out), buf(gpu, &sh_logit));
        let shared = with_shared.then_some(moe::SharedOutput {
            out: &sb,
            logit: &lb,
        });
        let shape = moe::CombineShape {
            n_tokens: n_tokens as u32,
            width: width as u32,
            k: k as u32,
        };
        let (eb, ewb) = (buf(gpu, &e_out), buf(gpu, &e_w));
        let routed = moe::RoutedOutputs {
            expert_out: &eb,
            expert_w: &ewb,
        };
        let d = moe::moe_combine(gpu, cache, shape, routed, shared, &y).unwrap();
        run_dispatches(gpu, &[&d]);
        let expect: Vec<f32> = (0..n_tokens * width)
            .map(|i| {
                let (t, c) = (i / width, i % width);
                let routed: f32 = (0..k)
                    .map(|j| e_w[t * k + j] * e_out[(t * k + j) * width + c])
                    .sum();
                routed
                    + if with_shared {
                        sigmoid(sh_logit[t]) * sh_out[i]
                    } else {
                        0.0
                    }
            })
            .collect();
        assert_close(
            &format!("moe_combine shared {with_shared}"),
            &read_f32(gpu, &y, n_tokens * width).unwrap(),
            &expect,
            1e-6,
            1e-5,
        );
    }
}

/// The prefill expert path: slots grouped by expert on the GPU (`moe_group`), then one
/// matmul per expert over its slots (`matmul_experts`), equals a matvec per slot on the CPU
/// (2e-5 of the sum of |w x| per row, as the matvec). Covers every token tile (16, 32, 64),
/// experts with more slots than a tile (70 tokens), rows past a tile, pieces split on expert
/// boundaries, inputs shared by a token's slots (group k) and per slot (group 1), and an
/// output offset.
#[test]
fn matmul_experts_matches_per_slot_matvec() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(33);
    for_each_matmul_form(&mut gpu, |gpu, bound| {
        for (ty, n_tokens, k, rows) in [
            (GgmlType::Q4K, 5usize, 3usize, 20usize),
            (GgmlType::Q8_0, 70, 2, 70),
            (GgmlType::F32, 9, 2, 33),
        ] {
            let case = ExpertCase {
                ty,
                n_tokens,
                k,
                rows,
            };
            matmul_experts_case(gpu, &cache, &mut rng, case, bound);
        }
    });
}

/// The batched step's grouped experts (`matvec_batch_experts`) against the per-slot
/// reference, bound as the matvec (2e-5 of the sum of |w x|), in the CPU split (8 rows an
/// invocation) and the GPU one: experts with one slot and with more than one column chunk
/// (16 tokens routed to 2 of 3 experts), the experts whole, in pieces, and half in host
/// memory.
#[test]
fn matvec_batch_experts_matches_per_slot_matvec() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(36);
    for_each_matvec_grid(&mut gpu, &[512], |gpu| {
        for (ty, n_tokens, k, rows, n_experts) in [
            (GgmlType::Q4K, 5usize, 3usize, 20usize, 6usize),
            (GgmlType::Q6K, 16, 2, 40, 3),
            (GgmlType::Q8_0, 3, 2, 33, 6),
            (GgmlType::F16, 9, 2, 8, 6),
        ] {
            let cols = 256usize;
            let w = random_weights(ty, n_experts * rows, cols, &mut rng);
            let wf = dequantize(ty, &w, n_experts * rows * cols).unwrap();
            let ids = routed_ids(n_tokens, k, n_experts);
            let grouping = Grouping::new(gpu, &cache, &ids, n_experts);
            let slab = ty.row_bytes(cols as u64).unwrap() * rows as u64;
            let pool = [2u32, 0];
            for (group_size, max_piece, pool) in [
                (k, u64::MAX, None),
                (1, 2 * slab, None),
                (k, 2 * slab, Some(&pool[..])),
            ] {
                let shape = MatrixShape {
                    ty,
                    cols: cols as u32,
                    rows: rows as u32,
                };
                let m = placed_experts(gpu, (shape, n_experts), &w, max_piece, pool);
                let x = random(ids.len() / group_size * cols, 1.0, &mut rng);
                let layout = SlotLayout {
                    rows,
                    cols,
                    group: group_size,
                    stride: rows + 3,
                    offset: 2,
                };
                let run = (n_tokens, GroupedKernel::Batched);
                let got = grouping.run(gpu, &cache, &m, run, &x, &layout);
                let what = format!(
                    "{ty} tokens {n_tokens} k {k} group {group_size} pieces {} pool {pool:?} grid {:?}",
                    m.pieces().count(),
                    gpu.features.matvec_min_grid
                );
                assert_slots_match(&what, 2e-5, &got, &ids, &wf, &x, &layout);
            }
        }
    });
}

/// One weight type and routing of `matmul_experts_matches_per_slot_matvec`.
struct ExpertCase {
    ty: GgmlType,
    n_tokens: usize,
    k: usize,
    rows: usize,
}

fn matmul_experts_case(
    gpu: &GpuContext,
    cache: &PipelineCache,
    rng: &mut SplitMix64,
    case: ExpertCase,
    bound: f32,
) {
    let ExpertCase {
        ty,
        n_tokens,
        k,
        rows,
    } = case;
    let (n_experts, cols) = (6usize, 256usize);
    let w = random_weights(ty, n_experts * rows, cols, rng);
    let wf = dequantize(ty, &w, n_experts * rows * cols).unwrap();
    let ids = routed_ids(n_tokens, k, n_experts);
    let slots = ids.len();
    let grouping = Grouping::new(gpu, cache, &ids, n_experts);
    let slab = ty.row_bytes(cols as u64).unwrap() * rows as u64;
    // Whole or in pieces of 4 experts; every expert resident, or experts 4 and 0 in the
    // pool (that slot order) and all in host memory.
    let forms = [
        (k, u64::MAX, None),
        (1, 4 * slab, None),
        (k, 4 * slab, Some(&[4u32, 0][..])),
    ];
    let forms = forms.into_iter().flat_map(|f| TOKEN_TILES.map(|t| (f, t)));
    for ((group_size, max_piece, pool), token_tile) in forms {
        let shape = MatrixShape {
            ty,
            cols: cols as u32,
            rows: rows as u32,
        };
        let m = placed_experts(gpu, (shape, n_experts), &w, max_piece, pool);
        let n_x = slots / group_size;
        let x = random(n_x * cols, 1.0, rng);
        let layout = SlotLayout {
            rows,
            cols,
            group: group_size,
            stride: rows + 3,
            offset: 2,
        };
        let run = (n_tokens, GroupedKernel::Tiles(token_tile));
        let got = grouping.run(gpu, cache, &m, run, &x, &layout);
        grouping.assert_exact(gpu, &ids, n_experts);
        let what = format!(
            "{ty} {:?} tokens {n_tokens} k {k} group {group_size} pieces {} pool {pool:?} tile {token_tile}",
            gpu.features.matmul,
            m.pieces().count()
        );
        assert_slots_match(&what, bound, &got, &ids, &wf, &x, &layout);
    }
}

/// The expert matmul's token tile is the smallest that holds an expert's average share of
/// a step's slots: Qwen3.5-35B-A3B's 512-token steps (8 of 256 experts, 16 each), 397B's
/// (10 of 512), the bench model's (8 of 32, 128 each: the largest tile), and in between.
#[test]
fn token_tile_holds_an_experts_average_share() {
    for (n_tokens, used, n_expert, tile) in [
        (512, 8, 256, 16),
        (512, 10, 512, 16),
        (512, 8, 32, 64),
        (128, 8, 32, 32),
        (100, 8, 32, 32),
        (1, 8, 256, 16),
    ] {
        assert_eq!(
            token_tile(n_tokens, used, n_expert),
            tile,
            "{n_tokens} tokens, {used} of {n_expert} experts"
        );
    }
}

/// `bytes`, `n_experts` slabs of `shape`, in pieces of at most `max_piece` bytes: every
/// expert resident in expert order (`pool` None), or `pool`'s experts in a VRAM pool in that
/// slot order and every expert in host memory, the rest read from there.
fn placed_experts(
    gpu: &GpuContext,
    (shape, n_experts): (MatrixShape, usize),
    bytes: &[u8],
    max_piece: u64,
    pool: Option<&[u32]>,
) -> ExpertTensor {
    let n = n_experts as u32;
    match pool {
        None => {
            let m = QuantMatrix::upload_experts(gpu, "experts", shape, n, bytes, max_piece);
            ExpertTensor::resident(gpu, m.unwrap(), shape.rows).unwrap()
        }
        Some(slots) => {
            let table = ExpertTable::with_slots(gpu, n, slots).unwrap();
            let placed = (table, slots);
            ExpertTensor::split(gpu, "experts", (shape, n), bytes, max_piece, placed).unwrap()
        }
    }
}

/// Each token's k distinct experts; expert 0 gets every token when k = 2.
fn routed_ids(n_tokens: usize, k: usize, n_experts: usize) -> Vec<u32> {
    (0..n_tokens)
        .flat_map(|t| {
            (0..k).map(move |j| {
                if j == 0 {
                    0
                } else {
                    ((t + j) % (n_experts - 1) + 1) as u32
                }
            })
        })
        .collect()
}

/// `moe_group` alone, exactly (a stable counting sort of the slots by expert), at the sizes
/// its parallel steps split differently: fewer experts than invocations and more (runs of
/// 2 experts, and 300, not a multiple of the workgroup), one block of slots and many (a
/// 512-token chunk routed to 10 of 512 experts, as Qwen3.5-397B-A17B), a partial last
/// block, experts no slot chose, and one expert taking every slot.
#[test]
fn moe_group_sorts_slots_by_expert_stably() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(35);
    for (n_experts, slots) in [(6, 140), (256, 1024), (300, 257), (512, 5120), (1, 300)] {
        let ids: Vec<u32> = (0..slots)
            .map(|_| rng.below(n_experts as u64) as u32)
            .collect();
        let grouping = Grouping::new(&gpu, &cache, &ids, n_experts);
        run_dispatches(&gpu, &[&grouping.dispatch]);
        grouping.assert_exact(&gpu, &ids, n_experts);
    }
}

/// The slots of `ids` grouped by expert on the GPU: `moe_group` and what it writes.
/// Which kernel runs a grouping's experts.
#[derive(Clone, Copy, Debug)]
enum GroupedKernel {
    /// `matmul_experts` in token tiles of this many slots.
    Tiles(u32),
    /// `matvec_batch_experts`.
    Batched,
}

struct Grouping {
    slots: usize,
    order: wgpu::Buffer,
    offsets: wgpu::Buffer,
    dispatch: Dispatch,
}

impl Grouping {
    fn new(gpu: &GpuContext, cache: &PipelineCache, ids: &[u32], n_experts: usize) -> Grouping {
        let slots = ids.len();
        let ids = storage_buffer(gpu, "ids", bytemuck::cast_slice(ids));
        let order = f32_buffer(gpu, "order", slots);
        let offsets = f32_buffer(gpu, "offsets", n_experts + 1);
        let io = moe::MoeGroupIo {
            ids: &ids,
            order: &order,
            offsets: &offsets,
        };
        let dispatch = moe::moe_group(gpu, cache, n_experts as u32, slots as u32, io).unwrap();
        Grouping {
            slots,
            order,
            offsets,
            dispatch,
        }
    }

    /// Groups the slots, then runs the grouped expert kernel `kernel` of `m` over the inputs
    /// `x` of `n_tokens` tokens; returns the outputs read back, laid out as `layout` says.
    fn run(
        &self,
        gpu: &GpuContext,
        cache: &PipelineCache,
        m: &ExpertTensor,
        (n_tokens, kernel): (usize, GroupedKernel),
        x: &[f32],
        layout: &SlotLayout,
    ) -> Vec<f32> {
        let slots = self.slots;
        let xb = buf(gpu, x);
        let y = f32_buffer(gpu, "y", slots * layout.stride);
        let experts = linear::ExpertWeights { w: m };
        let groups = linear::ExpertGroups {
            order: &self.order,
            offsets: &self.offsets,
            token_tile: match kernel {
                GroupedKernel::Tiles(tile) => tile,
                GroupedKernel::Batched => 0,
            },
        };
        let input = linear::SlotInput {
            buffer: &xb,
            stride: layout.cols as u32,
            group: layout.group as u32,
        };
        let output = linear::SlotOutput {
            buffer: &y,
            stride: layout.stride as u32,
            offset: layout.offset as u32,
        };
        let t = n_tokens as u32;
        let ds = match kernel {
            GroupedKernel::Tiles(_) => {
                linear::matmul_experts(gpu, cache, experts, t, groups, input, output)
            }
            GroupedKernel::Batched => {
                linear::matvec_batch_experts(gpu, cache, experts, t, groups, input, output)
            }
        };
        let ds = ds.unwrap();
        let mut all = vec![&self.dispatch];
        all.extend(ds.iter());
        run_dispatches(gpu, &all);
        read_f32(gpu, &y, slots * layout.stride).unwrap()
    }

    /// The grouping itself, exactly: a stable counting sort of the slots by expert.
    fn assert_exact(&self, gpu: &GpuContext, ids: &[u32], n_experts: usize) {
        let slots = ids.len();
        let mut expect_order: Vec<u32> = (0..slots as u32).collect();
        expect_order.sort_by_key(|&s| ids[s as usize]);
        let expect_offsets: Vec<u32> = (0..=n_experts as u32)
            .map(|e| ids.iter().filter(|&&i| i < e).count() as u32)
            .collect();
        let as_u32 = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        assert_eq!(
            as_u32(read_f32(gpu, &self.order, slots).unwrap()),
            expect_order
        );
        assert_eq!(
            as_u32(read_f32(gpu, &self.offsets, n_experts + 1).unwrap()),
            expect_offsets
        );
    }
}

/// A prompt chunk's many slots take the many-slot kernel (more rows per workgroup): the
/// same results as per slot on the CPU, bound as the matvec (2e-5 of the sum of |w x|).
#[test]
fn many_slot_matvec_experts_matches_reference() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    // The CPU form (8 rows an invocation) and the GPU form (as few as fill 512).
    for_each_matvec_grid(&mut gpu, &[512], many_slot_cases);
}

fn many_slot_cases(gpu: &GpuContext) {
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(34);
    let (n_experts, rows, cols) = (5usize, 100usize, 256usize);
    let slots = linear::MANY_SLOTS as usize + 6;
    for ty in [GgmlType::Q4K, GgmlType::F16] {
        let w = random_weights(ty, n_experts * rows, cols, &mut rng);
        let wf = dequantize(ty, &w, n_experts * rows * cols).unwrap();
        let ids: Vec<u32> = (0..slots)
            .map(|_| rng.below(n_experts as u64) as u32)
            .collect();
        let x = random(slots * cols, 1.0, &mut rng);
        let shape = MatrixShape {
            ty,
            cols: cols as u32,
            rows: rows as u32,
        };
        let m = placed_experts(gpu, (shape, n_experts), &w, u64::MAX, None);
        let (ids_buf, xb) = (
            storage_buffer(gpu, "ids", bytemuck::cast_slice(&ids)),
            buf(gpu, &x),
        );
        let y = f32_buffer(gpu, "y", slots * rows);
        let input = linear::SlotInput {
            buffer: &xb,
            stride: cols as u32,
            group: 1,
        };
        let output = linear::SlotOutput {
            buffer: &y,
            stride: rows as u32,
            offset: 0,
        };
        let experts = linear::ExpertWeights { w: &m };
        let n_slots = slots as u32;
        let ds =
            linear::matvec_experts(gpu, &cache, experts, n_slots, &ids_buf, input, output).unwrap();
        run_dispatches(gpu, &ds.iter().collect::<Vec<_>>());
        let got = read_f32(gpu, &y, slots * rows).unwrap();
        let layout = SlotLayout {
            rows,
            cols,
            group: 1,
            stride: rows,
            offset: 0,
        };
        assert_slots_match(
            &format!("{ty} many slots"),
            2e-5,
            &got,
            &ids,
            &wf,
            &x,
            &layout,
        );
    }
}
