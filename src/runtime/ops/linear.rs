//! Launchers of `shaders/linear/`.

use std::sync::Arc;

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::params::MatvecParams;
use crate::runtime::pipeline::{Kernel, PipelineCache, Variant};
use crate::runtime::tensor::{uniform_buffer, QuantMatrix};

/// Invocations per workgroup and rows per workgroup of the matvec kernel.
const MATVEC_WG: u32 = 64;
const MATVEC_ROWS: u32 = 2;

/// Splits `n` workgroups into a grid within the per-dimension limit.
pub fn grid(n: u32, max_per_dim: u32) -> (u32, u32) {
    if n <= max_per_dim {
        (n.max(1), 1)
    } else {
        (max_per_dim, n.div_ceil(max_per_dim))
    }
}

/// `y[y_offset..] = W x[x_offset..]`, one dispatch per piece of W.
pub struct Matvec {
    pipeline: Arc<wgpu::ComputePipeline>,
    dispatches: Vec<(wgpu::BindGroup, (u32, u32))>,
    // Kept alive for the bind groups.
    _params: Vec<wgpu::Buffer>,
}

impl Matvec {
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        w: &QuantMatrix,
        x: &wgpu::Buffer,
        x_offset: u32,
        y: &wgpu::Buffer,
        y_offset: u32,
    ) -> Result<Matvec, GpuError> {
        let variant = Variant::for_features(&ctx.features);
        let pipeline = cache.get(
            &ctx.device,
            Kernel::Matvec(w.ty),
            variant,
            &[("WG", MATVEC_WG), ("ROWS", MATVEC_ROWS)],
        )?;
        let layout = pipeline.get_bind_group_layout(0);
        let mut dispatches = Vec::new();
        let mut params = Vec::new();
        for piece in &w.pieces {
            let p = MatvecParams {
                rows: piece.rows,
                units: w.cols / 32,
                row_bytes: w.row_bytes,
                weight_offset: 0,
                x_offset,
                y_offset: y_offset + piece.first_row,
                _pad: [0; 2],
            };
            let buf = uniform_buffer(ctx, "matvec params", &p);
            let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("matvec"),
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: piece.buffer.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: x.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: y.as_entire_binding(),
                    },
                ],
            });
            let groups = piece.rows.div_ceil(MATVEC_ROWS);
            dispatches.push((
                bind,
                grid(groups, ctx.limits.max_compute_workgroups_per_dimension),
            ));
            params.push(buf);
        }
        Ok(Matvec {
            pipeline,
            dispatches,
            _params: params,
        })
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        for (bind, (gx, gy)) in &self.dispatches {
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(*gx, *gy, 1);
        }
    }
}
