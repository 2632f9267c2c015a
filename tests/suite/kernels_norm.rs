//! `shaders/norm/` against `model::reference::norm`, rows of awkward lengths, both reductions.

use qwen_wgpu::model::reference::norm::{gated_rms_norm, rms_norm};
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::norm;
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer};
use qwen_wgpu::runtime::GpuContext;

use crate::common::{assert_close, for_each_variant, gpu_or_skip, run_dispatches};

const EPS: f32 = 1e-6;
/// Row lengths: below, at and above the workgroup size, not multiples of it.
const SHAPES: [(u32, u32); 5] = [(1, 16), (3, 64), (7, 100), (2, 2048), (5, 4097)];

fn random(n: usize, scale: f32, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| scale * rng.symmetric_f32()).collect()
}

fn buf(gpu: &GpuContext, v: &[f32]) -> wgpu::Buffer {
    storage_buffer(gpu, "t", bytemuck::cast_slice(v))
}

fn rows_of(v: &[f32], n: usize) -> impl Iterator<Item = &[f32]> {
    v.chunks_exact(n)
}

/// All three kernels for every shape; f32 throughout, so the bound is a few ulps of the
/// result: atol 1e-6, rtol 2e-5 (rtol 1e-4 for the gated norm, whose silu uses the GPU's exp).
fn check_all(gpu: &GpuContext, cache: &PipelineCache, rng: &mut SplitMix64) {
    for (rows, n) in SHAPES {
        let total = (rows * n) as usize;
        let nu = n as usize;
        let x = random(total, 3.0, rng);
        let r = random(total, 1.0, rng);
        let z = random(total, 4.0, rng);
        let w: Vec<f32> = random(nu, 0.1, rng).iter().map(|v| 1.0 + v).collect();
        let (xb, rb, zb, wb) = (buf(gpu, &x), buf(gpu, &r), buf(gpu, &z), buf(gpu, &w));
        let (yb, ob) = (f32_buffer(gpu, "y", total), f32_buffer(gpu, "o", total));
        let label = format!("{rows}x{n}");
        let rs = norm::Rows { n, rows, eps: EPS };

        let io = norm::RmsNormIo {
            src: &xb,
            w: &wb,
            y: &yb,
        };
        let d = norm::rms_norm(gpu, cache, rs, io).unwrap();
        run_dispatches(gpu, &[&d]);
        let expect: Vec<f32> = rows_of(&x, nu)
            .flat_map(|row| rms_norm(row, &w, EPS))
            .collect();
        assert_close(
            &format!("rms_norm {label}"),
            &read_f32(gpu, &yb, total).unwrap(),
            &expect,
            1e-6,
            2e-5,
        );

        // x += r, then normalise: the residual stream is updated too.
        let stream = buf(gpu, &x);
        let io = norm::AddRmsNormIo {
            src: &rb,
            w: &wb,
            y: &yb,
            x: &stream,
        };
        let d = norm::add_rms_norm(gpu, cache, rs, io).unwrap();
        run_dispatches(gpu, &[&d]);
        let sum: Vec<f32> = x.iter().zip(&r).map(|(a, b)| a + b).collect();
        assert_close(
            &format!("add_rms_norm stream {label}"),
            &read_f32(gpu, &stream, total).unwrap(),
            &sum,
            0.0,
            0.0,
        );
        let expect: Vec<f32> = rows_of(&sum, nu)
            .flat_map(|row| rms_norm(row, &w, EPS))
            .collect();
        assert_close(
            &format!("add_rms_norm {label}"),
            &read_f32(gpu, &yb, total).unwrap(),
            &expect,
            1e-6,
            2e-5,
        );

        let io = norm::GatedRmsNormIo {
            src: &xb,
            w: &wb,
            z: &zb,
            y: &ob,
        };
        let d = norm::gated_rms_norm(gpu, cache, rs, io).unwrap();
        run_dispatches(gpu, &[&d]);
        let expect: Vec<f32> = rows_of(&x, nu)
            .zip(rows_of(&z, nu))
            .flat_map(|(row, zr)| gated_rms_norm(row, &w, zr, EPS))
            .collect();
        assert_close(
            &format!("gated_rms_norm {label}"),
            &read_f32(gpu, &ob, total).unwrap(),
            &expect,
            1e-6,
            1e-4,
        );
    }
}

#[test]
fn rms_norms_match_reference() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(7);
    for_each_variant(&mut gpu, |gpu| check_all(gpu, &cache, &mut rng));
}
