//! Matvec bandwidth per weight type: `cargo bench --bench matvec [-- ROWS COLS [MIN_GRID]]`.
//! `MIN_GRID` forces the GPU form's grid (the most rows per workgroup that still launch that
//! many workgroups) on any adapter; 0 forces the CPU form (16 rows a workgroup).
//!
//! Each type's matrix is dispatched REPS times in one submit; the figure is weight bytes read
//! per second (the kernel is memory-bound at batch 1), from wall time around the submit.

use std::time::Instant;

use qwen_wgpu::loader::GgmlType;
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::ops::linear::Matvec;
use qwen_wgpu::runtime::pipeline::PipelineCache;
use qwen_wgpu::runtime::tensor::{f32_buffer, read_f32, storage_buffer, MatrixShape, QuantMatrix};
use qwen_wgpu::runtime::{AdapterChoice, GpuContext};

const REPS: usize = 20;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (rows, cols) = (
        args.first().copied().unwrap_or(2048),
        args.get(1).copied().unwrap_or(2048),
    );
    let mut gpu = match GpuContext::new(&AdapterChoice::from_env()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("no GPU: {e}");
            return;
        }
    };
    if let Some(&g) = args.get(2) {
        gpu.features.matvec_min_grid = (g > 0).then_some(g as u32);
    }
    println!("adapter: {}", gpu.describe());
    println!("matvec grid: {:?}", gpu.features.matvec_min_grid);
    println!("matvec {rows} x {cols}, {REPS} dispatches per submit");
    println!(
        "{:<8} {:>10} {:>12} {:>10}",
        "type", "MiB", "us/matvec", "GB/s"
    );
    let cache = PipelineCache::default();
    let mut rng = SplitMix64::new(1);
    for ty in GgmlType::SUPPORTED {
        let bytes = ty
            .row_bytes(cols as u64)
            .expect("cols is a multiple of 256") as usize
            * rows;
        let w: Vec<u8> = (0..bytes).map(|_| (rng.next_u64() & 0x3F) as u8).collect();
        let shape = MatrixShape {
            ty,
            cols: cols as u32,
            rows: rows as u32,
        };
        let max_piece = gpu.limits.max_storage_buffer_binding_size;
        let m = QuantMatrix::upload(&gpu, "w", shape, &w, max_piece).expect("upload");
        let x: Vec<f32> = (0..cols).map(|_| rng.symmetric_f32()).collect();
        let xb = storage_buffer(&gpu, "x", bytemuck::cast_slice(&x));
        let yb = f32_buffer(&gpu, "y", rows);
        let op = Matvec::single(&gpu, &cache, &m, &xb, 0, &yb, 0).expect("pipeline");
        let run = || {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                for _ in 0..REPS {
                    op.encode(&mut pass);
                }
            }
            gpu.queue.submit([enc.finish()]);
            read_f32(&gpu, &yb, 1).expect("read-back");
        };
        run(); // warm-up: pipeline compilation, first touch of the buffers
        let t = Instant::now();
        run();
        let per = t.elapsed().as_secs_f64() / REPS as f64;
        println!(
            "{:<8} {:>10.2} {:>12.1} {:>10.2}",
            ty.name(),
            bytes as f64 / (1 << 20) as f64,
            per * 1e6,
            bytes as f64 / per / 1e9
        );
    }
}
