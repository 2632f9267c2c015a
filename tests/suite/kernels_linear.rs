//! `shaders/linear/matvec.wgsl` against the CPU reference (dequantize, then
//! `model::reference::linear::matvec`) for every weight type, on awkward shapes, with and
//! without subgroups, and with the matrix split into pieces.

use qwen_wgpu::loader::dequant::dequantize;
use qwen_wgpu::loader::quantize::encode_floats;
use qwen_wgpu::loader::GgmlType;
use qwen_wgpu::model::reference::linear::{matvec, round_to_int8};
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::copy_floats::copy_floats;
use qwen_wgpu::runtime::ops::linear::matmul::MatmulForm;
use qwen_wgpu::runtime::ops::linear::{embed, matmul, matvec_batch, Matvec, Strided};
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer, MatrixShape, QuantMatrix};
use qwen_wgpu::runtime::GpuContext;

use crate::common::{
    assert_close, for_each_matmul_form, for_each_matvec_grid, for_each_variant, gpu_or_skip,
    run_dispatches,
};

/// Random blocks of `ty` with finite scales: random bytes everywhere, then each scale field
/// overwritten with a moderate f16 (or f32 / E8M0) value.
pub fn random_weights(ty: GgmlType, rows: usize, cols: usize, rng: &mut SplitMix64) -> Vec<u8> {
    let n = rows * cols;
    if matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16) {
        let v: Vec<f32> = (0..n).map(|_| rng.symmetric_f32()).collect();
        return encode_floats(&v, ty);
    }
    let layout = ty.layout();
    let n_blocks = n / layout.block_size as usize;
    let size = layout.type_size as usize;
    let (f16_at, f32_at, e8m0_at): (&[usize], Option<usize>, Option<usize>) = match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => (&[0, 2], None, None),
        GgmlType::Q2K => (&[80, 82], None, None),
        GgmlType::Q3K => (&[108], None, None),
        GgmlType::Q6K => (&[208], None, None),
        GgmlType::Q8K => (&[], Some(0), None),
        GgmlType::Mxfp4 => (&[], None, Some(0)),
        _ => (&[0], None, None),
    };
    let mut bytes: Vec<u8> = (0..n_blocks * size).map(|_| rng.next_u64() as u8).collect();
    for b in 0..n_blocks {
        let base = b * size;
        for &off in f16_at {
            let v = half::f16::from_f32(rng.symmetric_f32() * 0.05);
            bytes[base + off..base + off + 2].copy_from_slice(&v.to_le_bytes());
        }
        if let Some(off) = f32_at {
            let v = rng.symmetric_f32() * 0.01;
            bytes[base + off..base + off + 4].copy_from_slice(&v.to_le_bytes());
        }
        if let Some(off) = e8m0_at {
            bytes[base + off] = 118 + rng.below(8) as u8;
        }
    }
    bytes
}

/// GPU matvec of `w` ({cols, rows} of `ty`) and `x`, split into pieces of `max_piece` bytes.
fn gpu_matvec(
    gpu: &GpuContext,
    cache: &PipelineCache,
    ty: GgmlType,
    w: &[u8],
    x: &[f32],
    rows: usize,
    max_piece: u64,
) -> Vec<f32> {
    let cols = x.len();
    let shape = MatrixShape {
        ty,
        cols: cols as u32,
        rows: rows as u32,
    };
    let m = QuantMatrix::upload(gpu, "w", shape, w, max_piece).unwrap();
    // x sits at an offset in a larger buffer, y likewise, as in the executor's scratch.
    let mut xs = vec![0.0f32; 8];
    xs.extend_from_slice(x);
    let xb = storage_buffer(gpu, "x", bytemuck::cast_slice(&xs));
    let yb = f32_buffer(gpu, "y", rows + 3);
    let op = Matvec::single(gpu, cache, &m, &xb, 8, &yb, 3).unwrap();
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        op.encode(&mut pass);
    }
    gpu.queue.submit([enc.finish()]);
    read_f32(gpu, &yb, rows + 3).unwrap()[3..].to_vec()
}

/// `|gpu - ref| <= 2e-5 * sum_i |w_i x_i| + 1e-30`: f32 dot products summed in another
/// order differ by at most about n * eps * sum |w_i x_i|; for these row lengths that
/// bound is 1.5e-5 to 6e-5, and the observed error is far below it.
fn check(ty: GgmlType, rows: usize, cols: usize, gpu_y: &[f32], w: &[f32], x: &[f32]) {
    check_within(2e-5, ty, rows, cols, gpu_y, w, x)
}

/// `|gpu - ref| <= bound * sum_i |w_i x_i| + 1e-30`.
fn check_within(
    bound: f32,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    gpu_y: &[f32],
    w: &[f32],
    x: &[f32],
) {
    let reference = matvec(w, x, rows, cols);
    for r in 0..rows {
        let abs: f32 = w[r * cols..(r + 1) * cols]
            .iter()
            .zip(x)
            .map(|(a, b)| (a * b).abs())
            .sum();
        let tol = bound * abs + 1e-30;
        assert!(
            (gpu_y[r] - reference[r]).abs() <= tol,
            "{ty} {rows}x{cols} row {r}: gpu {} ref {} (tol {tol})",
            gpu_y[r],
            reference[r]
        );
    }
}

#[test]
fn matvec_matches_reference_for_every_type() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(41);
    for_each_variant(&mut gpu, |gpu| matvec_all_types(gpu, &cache, &mut rng));
    // The GPU form, one row per workgroup at these sizes.
    for_each_matvec_grid(&mut gpu, &[512], |gpu| {
        matvec_all_types(gpu, &cache, &mut rng)
    });
}

/// Every rows-per-workgroup the kernel is built for (33 rows: minimum grids of 1, 5, 9, 17
/// and 33 take 16, 8, 4, 2 and 1 rows), same bound as every matvec.
#[test]
fn matvec_matches_reference_at_every_row_choice() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(44);
    for_each_matvec_grid(&mut gpu, &[1, 5, 9, 17, 33], |gpu| {
        for ty in [
            GgmlType::Q4K,
            GgmlType::Q6K,
            GgmlType::Q8_0,
            GgmlType::F16,
            GgmlType::Q5K,
        ] {
            let (rows, cols) = (33, 512);
            let w = random_weights(ty, rows, cols, &mut rng);
            let x: Vec<f32> = (0..cols).map(|_| rng.symmetric_f32()).collect();
            let y = gpu_matvec(gpu, &cache, ty, &w, &x, rows, u64::MAX);
            let wf = dequantize(ty, &w, rows * cols).unwrap();
            check(ty, rows, cols, &y, &wf, &x);
        }
    });
}

fn matvec_all_types(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    for ty in GgmlType::SUPPORTED {
        let block = ty.layout().block_size as usize;
        // Odd row counts (not a multiple of the rows per workgroup), one row, rows with
        // fewer units than invocations and with more.
        let col_choices = if block == 256 {
            vec![256, 768, 2304]
        } else {
            vec![32, 96, 2080]
        };
        for (rows, cols) in [
            (1, col_choices[0]),
            (7, col_choices[1]),
            (33, col_choices[2]),
        ] {
            let w = random_weights(ty, rows, cols, rng);
            let x: Vec<f32> = (0..cols).map(|_| rng.symmetric_f32()).collect();
            let y = gpu_matvec(gpu, cache, ty, &w, &x, rows, u64::MAX);
            let wf = dequantize(ty, &w, rows * cols).unwrap();
            check(ty, rows, cols, &y, &wf, &x);
        }
    }
}

#[test]
fn matvec_of_a_split_matrix_matches_the_whole() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    for_each_matvec_grid(&mut gpu, &[512], split_matvec_cases);
}

fn split_matvec_cases(gpu: &GpuContext) {
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(42);
    for ty in [GgmlType::Q4K, GgmlType::Q8_0, GgmlType::F32] {
        let (rows, cols) = (23, 256);
        let w = random_weights(ty, rows, cols, &mut rng);
        let x: Vec<f32> = (0..cols).map(|_| rng.symmetric_f32()).collect();
        // A forced limit of 5 rows per storage binding: pieces of 5, 5, 5, 5, 3 rows.
        let row_bytes = ty.row_bytes(cols as u64).unwrap();
        let shape = MatrixShape {
            ty,
            cols: cols as u32,
            rows: rows as u32,
        };
        let m = QuantMatrix::upload(gpu, "w", shape, &w, 5 * row_bytes + 1).unwrap();
        assert_eq!(m.pieces.len(), 5);
        let split = gpu_matvec(gpu, &cache, ty, &w, &x, rows, 5 * row_bytes + 1);
        let whole = gpu_matvec(gpu, &cache, ty, &w, &x, rows, u64::MAX);
        assert_eq!(split, whole, "{ty}: pieces must give the very same sums");
        check(
            ty,
            rows,
            cols,
            &split,
            &dequantize(ty, &w, rows * cols).unwrap(),
            &x,
        );
    }
    // A row larger than the limit, or rows that are not whole units, are errors.
    let w = vec![0u8; 4 * 64];
    let f32_shape = |cols, rows| MatrixShape {
        ty: GgmlType::F32,
        cols,
        rows,
    };
    assert!(QuantMatrix::upload(gpu, "w", f32_shape(64, 1), &w, 100).is_err());
    assert!(QuantMatrix::upload(gpu, "w", f32_shape(16, 4), &w, 1 << 20).is_err());
    // The kernel reads x as vec4s: an input offset that is not a multiple of 4 floats is
    // refused rather than read shifted.
    let m = QuantMatrix::upload(gpu, "w", f32_shape(64, 1), &w, 1 << 20).unwrap();
    let xb = f32_buffer(gpu, "x", 70);
    let yb = f32_buffer(gpu, "y", 1);
    let err = Matvec::single(gpu, &cache, &m, &xb, 5, &yb, 0)
        .err()
        .expect("offset 5 refused");
    assert!(err.to_string().contains("multiples of 4"), "{err}");
}

/// Dequantized rows must equal the CPU's up to the GPU contracting `a * q - b` into one
/// fused multiply-add: atol 2e-6 of the row's largest magnitude, for every type, with the
/// table whole and in pieces.
#[test]
fn embed_matches_reference_for_every_type() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(43);
    for ty in GgmlType::SUPPORTED {
        let cols = if ty.layout().block_size == 256 {
            512
        } else {
            96
        };
        let rows = 37;
        let w = random_weights(ty, rows, cols, &mut rng);
        let table = dequantize(ty, &w, rows * cols).unwrap();
        let tokens: Vec<u32> = vec![0, 36, 5, 5, 17, 36];
        let row_bytes = ty.row_bytes(cols as u64).unwrap();
        for max_piece in [u64::MAX, 8 * row_bytes] {
            let shape = MatrixShape {
                ty,
                cols: cols as u32,
                rows: rows as u32,
            };
            let m = QuantMatrix::upload(&gpu, "embd", shape, &w, max_piece).unwrap();
            let tb = storage_buffer(&gpu, "tokens", bytemuck::cast_slice(&tokens));
            let out = f32_buffer(&gpu, "out", tokens.len() * cols);
            let ds = embed(&gpu, &cache, &m, tokens.len() as u32, &tb, &out).unwrap();
            run_dispatches(&gpu, &ds.iter().collect::<Vec<_>>());
            let got = read_f32(&gpu, &out, tokens.len() * cols).unwrap();
            for (t, &tok) in tokens.iter().enumerate() {
                let expect = &table[tok as usize * cols..(tok as usize + 1) * cols];
                let scale = expect.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert_close(
                    &format!("embed {ty} token {tok} pieces {}", m.pieces.len()),
                    &got[t * cols..(t + 1) * cols],
                    expect,
                    2e-6 * scale,
                    0.0,
                );
            }
        }
    }
}

/// `copy_floats` (a batched step's hand-off of one row) against the slice copy: exact, at
/// offsets on both sides, over a length that is not a multiple of the workgroup, touching
/// nothing else.
#[test]
fn copy_floats_matches_a_slice_copy() {
    let Some(gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(46);
    let src: Vec<f32> = (0..1000).map(|_| rng.symmetric_f32()).collect();
    let dst: Vec<f32> = (0..900).map(|_| rng.symmetric_f32()).collect();
    let (n, from, to) = (517usize, 300usize, 211usize);
    let sb = storage_buffer(&gpu, "src", bytemuck::cast_slice(&src));
    let db = storage_buffer(&gpu, "dst", bytemuck::cast_slice(&dst));
    let d = copy_floats(&gpu, &cache, n as u32, (&sb, from as u32), (&db, to as u32)).unwrap();
    run_dispatches(&gpu, &[&d]);
    let mut want = dst.clone();
    want[to..to + n].copy_from_slice(&src[from..from + n]);
    assert_eq!(read_f32(&gpu, &db, dst.len()).unwrap(), want);
    // A run past either end is refused, naming the sizes.
    let Err(e) = copy_floats(&gpu, &cache, 700, (&sb, 0), (&db, 300)) else {
        panic!("a copy past the end of dst was accepted");
    };
    assert!(e.to_string().contains("copy_floats: 700 floats"), "{e}");
}

/// The batched matvec (a decode step of several sequences, a short chunk) against the
/// reference matvec of every column, within the matvec's bound (2e-5 of the sum of |w x|
/// per output), for every type, with the matvec's GPU and CPU row splits, column counts
/// within one dispatch and past it, strided and offset input and output rows, and the
/// matrix in pieces.
#[test]
fn matvec_batch_matches_reference_for_every_type() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(45);
    for_each_matvec_grid(&mut gpu, &[512], |gpu| {
        for ty in GgmlType::SUPPORTED {
            let cols = if ty.layout().block_size == 256 {
                512
            } else {
                96
            };
            let rows = 37;
            let w = random_weights(ty, rows, cols, &mut rng);
            let wf = dequantize(ty, &w, rows * cols).unwrap();
            let row_bytes = ty.row_bytes(cols as u64).unwrap();
            for (n, max_piece) in [(1usize, u64::MAX), (3, u64::MAX), (11, 16 * row_bytes)] {
                // Rows of x and y with room around them: offsets and strides are honoured.
                let (x_stride, x_offset, y_stride, y_offset) = (cols + 8, 4, rows + 3, 2);
                let x: Vec<f32> = (0..x_offset + n * x_stride)
                    .map(|_| rng.symmetric_f32())
                    .collect();
                let shape = MatrixShape {
                    ty,
                    cols: cols as u32,
                    rows: rows as u32,
                };
                let m = QuantMatrix::upload(gpu, "w", shape, &w, max_piece).unwrap();
                let xb = storage_buffer(gpu, "x", bytemuck::cast_slice(&x));
                let yb = f32_buffer(gpu, "y", y_offset + n * y_stride);
                let xs = Strided::rows(&xb, x_stride as u32).at(x_offset as u32);
                let ys = Strided::rows(&yb, y_stride as u32).at(y_offset as u32);
                let ds = matvec_batch(gpu, &cache, &m, n as u32, xs, ys).unwrap();
                run_dispatches(gpu, &ds.iter().collect::<Vec<_>>());
                let got = read_f32(gpu, &yb, y_offset + n * y_stride).unwrap();
                for t in 0..n {
                    let y = &got[y_offset + t * y_stride..][..rows];
                    let xt = &x[x_offset + t * x_stride..][..cols];
                    check_within(2e-5, ty, rows, cols, y, &wf, xt);
                }
            }
        }
    });
}

/// The prefill matmul against the reference matvec of every token, in every form the
/// adapter runs (`for_each_matmul_form`: the f32 tiles within the matvec's bound, 2e-5 of
/// the sum of |w x| per output; f16 operands within 1e-3, 8-bit inputs 1e-2), for every
/// type, token counts around the tile size, and the matrix in pieces.
#[test]
fn matmul_matches_reference_for_every_type() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(44);
    for_each_matmul_form(&mut gpu, |gpu, bound| {
        for ty in GgmlType::SUPPORTED {
            matmul_case(gpu, &cache, &mut rng, ty, bound, |x| x.to_vec());
        }
    });
}

/// The 8-bit tiles against the reference on inputs rounded as the kernel rounds them (per
/// 16 elements to d round(x / d), d = max |x| / 127), for every type they stage: what is
/// left is the order of the f32 sums, and an input on a rounding tie that the GPU's
/// division may send the other way, within 1e-4 of the sum of |w x| per output.
#[test]
fn matmul_int8_matches_reference_on_rounded_inputs() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(45);
    let own = gpu.features.matmul;
    gpu.features.matmul = MatmulForm::TiledInt8;
    let staged = GgmlType::SUPPORTED
        .into_iter()
        .filter(|&ty| MatmulForm::TiledInt8.for_weights(ty) == MatmulForm::TiledInt8);
    for ty in staged {
        matmul_case(&gpu, &cache, &mut rng, ty, 1e-4, round_to_int8);
    }
    gpu.features.matmul = own;
}

fn matmul_case(
    gpu: &GpuContext,
    cache: &PipelineCache,
    rng: &mut SplitMix64,
    ty: GgmlType,
    bound: f32,
    reference_x: fn(&[f32]) -> Vec<f32>,
) {
    let cols = if ty.layout().block_size == 256 {
        512
    } else {
        96
    };
    // Past one 64-row tile, and into the second half of a 128-row one.
    let rows = 70;
    let w = random_weights(ty, rows, cols, rng);
    let wf = dequantize(ty, &w, rows * cols).unwrap();
    let row_bytes = ty.row_bytes(cols as u64).unwrap();
    for (n_tokens, max_piece) in [(1usize, u64::MAX), (17, u64::MAX), (65, 20 * row_bytes)] {
        let x: Vec<f32> = (0..n_tokens * cols).map(|_| rng.symmetric_f32()).collect();
        let shape = MatrixShape {
            ty,
            cols: cols as u32,
            rows: rows as u32,
        };
        let m = QuantMatrix::upload(gpu, "w", shape, &w, max_piece).unwrap();
        let xb = storage_buffer(gpu, "x", bytemuck::cast_slice(&x));
        let yb = f32_buffer(gpu, "y", n_tokens * rows);
        let ds = matmul(
            gpu,
            cache,
            &m,
            n_tokens as u32,
            Strided::rows(&xb, cols as u32),
            Strided::rows(&yb, rows as u32),
        )
        .unwrap();
        run_dispatches(gpu, &ds.iter().collect::<Vec<_>>());
        let got = read_f32(gpu, &yb, n_tokens * rows).unwrap();
        let xr = reference_x(&x);
        for t in 0..n_tokens {
            check_within(
                bound,
                ty,
                rows,
                cols,
                &got[t * rows..(t + 1) * rows],
                &wf,
                &xr[t * cols..(t + 1) * cols],
            );
        }
    }
}

/// On a GPU every decode matvec of Qwen3.5-35B-A3B's widths launches at least `MIN_GRID`
/// workgroups, except the matrices whose rows (times slots) cannot give it: the router, the
/// shared expert's one-row gate, ssm_beta and ssm_alpha (n_v_heads rows) and, with the byte
/// vocabulary, the output head. On a CPU device every matvec keeps 16 rows a workgroup.
#[test]
fn matvec_grids_fill_a_large_gpu_where_the_rows_allow() {
    use qwen_wgpu::loader::config::{FfnConfig, TensorRole};
    use qwen_wgpu::loader::presets::preset;
    use qwen_wgpu::runtime::ops::linear::matvec::{rows_per_workgroup, MIN_GRID, ROWS};
    let config = preset("a3b-depth").unwrap();
    let FfnConfig::Moe(m) = &config.ffn else {
        panic!("a3b-depth is a MoE model");
    };
    let mut too_small = std::collections::BTreeSet::new();
    for spec in config.tensor_specs() {
        if !spec.role.is_matmul() {
            continue;
        }
        // A 1-D weight (the shared expert's gate) is a one-row matvec.
        let rows = spec.dims.get(1).map_or(1, |&r| r as u32);
        let slots = if spec.role == TensorRole::RoutedExperts {
            m.n_expert_used
        } else {
            1
        };
        let r = rows_per_workgroup(Some(MIN_GRID), rows, slots);
        let workgroups = rows.div_ceil(r) * slots;
        if workgroups < MIN_GRID {
            assert_eq!(
                r, 1,
                "{}: {rows} rows x {slots} at {r} a workgroup",
                spec.name
            );
            let stem = spec
                .name
                .rsplit('.')
                .nth(1)
                .unwrap_or(&spec.name)
                .to_string();
            too_small.insert(stem);
        }
        assert_eq!(rows_per_workgroup(None, rows, slots), ROWS);
    }
    let expect = [
        "ffn_gate_inp",
        "ffn_gate_inp_shexp",
        "output",
        "ssm_alpha",
        "ssm_beta",
    ];
    let expect: std::collections::BTreeSet<String> = expect.iter().map(|s| s.to_string()).collect();
    assert_eq!(too_small, expect);
}
