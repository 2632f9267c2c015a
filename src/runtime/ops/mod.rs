//! Kernel launchers, one module per shader family. Each op builds its pipeline, params
//! buffer and bind group once; afterwards it only records dispatches.

pub mod attention;
pub mod gdn;
pub mod linear;
pub mod moe;
pub mod norm;
pub mod sample;

use std::sync::Arc;

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::pipeline::{Kernel, PipelineCache, Variant};
use crate::runtime::tensor::params_buffer;

/// Splits `n` workgroups into a 2-D grid within the per-dimension limit (kernels recover
/// the index as `wg.x + wg.y * num_workgroups.x` and bound-check it).
pub fn grid(n: u32, max_per_dim: u32) -> (u32, u32) {
    if n <= max_per_dim {
        (n.max(1), 1)
    } else {
        (max_per_dim, n.div_ceil(max_per_dim))
    }
}

/// One recorded dispatch: a pipeline, its bind group (binding 0 the params, then the
/// buffers) and the workgroup grid. Params are a read-only storage buffer rather than a
/// uniform one: lavapipe recompiles a shader at every dispatch whose uniform values changed.
pub struct Dispatch {
    pipeline: Arc<wgpu::ComputePipeline>,
    bind: wgpu::BindGroup,
    grid: [u32; 3],
    params: wgpu::Buffer,
}

impl Dispatch {
    /// `workgroups` in a line (laid out as a 2-D grid past the per-dimension limit).
    pub fn new<P: bytemuck::Pod>(
        ctx: &GpuContext,
        cache: &PipelineCache,
        kernel: Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        workgroups: u32,
    ) -> Result<Dispatch, GpuError> {
        let g = grid(workgroups, ctx.limits.max_compute_workgroups_per_dimension);
        Self::new_2d(ctx, cache, kernel, params, buffers, g)
    }

    /// An explicit `(x, y)` grid, for kernels that index two dimensions.
    pub fn new_2d<P: bytemuck::Pod>(
        ctx: &GpuContext,
        cache: &PipelineCache,
        kernel: Kernel,
        params: &P,
        buffers: &[&wgpu::Buffer],
        grid: (u32, u32),
    ) -> Result<Dispatch, GpuError> {
        let numbered: Vec<(u32, &wgpu::Buffer)> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u32 + 1, *b))
            .collect();
        Self::with_bindings(ctx, cache, kernel, params, &numbered, [grid.0, grid.1, 1])
    }

    /// Buffers at explicit binding numbers, for an entry point that uses only some of its
    /// module's bindings (its layout then has gaps).
    pub fn with_bindings<P: bytemuck::Pod>(
        ctx: &GpuContext,
        cache: &PipelineCache,
        kernel: Kernel,
        params: &P,
        bindings: &[(u32, &wgpu::Buffer)],
        grid: [u32; 3],
    ) -> Result<Dispatch, GpuError> {
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        if grid.iter().any(|&g| g > max) {
            return Err(GpuError::Shape(format!(
                "{kernel:?}: grid {grid:?} exceeds {max} workgroups per dimension"
            )));
        }
        let variant = Variant::for_features(&ctx.features);
        let pipeline = cache.get(&ctx.device, kernel, variant)?;
        let params_buf = params_buffer(ctx, kernel.entry_point(), params);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params_buf.as_entire_binding(),
        }];
        entries.extend(bindings.iter().map(|&(binding, b)| wgpu::BindGroupEntry {
            binding,
            resource: b.as_entire_binding(),
        }));
        ctx.created.bind_group();
        let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.entry_point()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Ok(Dispatch {
            pipeline,
            bind,
            grid: grid.map(|g| g.max(1)),
            params: params_buf,
        })
    }

    /// Replaces the params (per-step values: position, sampling draw) before the next submit.
    pub fn write_params<P: bytemuck::Pod>(&self, queue: &wgpu::Queue, params: &P) {
        queue.write_buffer(&self.params, 0, bytemuck::bytes_of(params));
    }

    /// Changes the workgroup grid (a dispatch whose extent follows the position).
    pub fn set_grid(&mut self, grid: [u32; 3]) {
        self.grid = grid.map(|g| g.max(1));
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.dispatch_workgroups(self.grid[0], self.grid[1], self.grid[2]);
    }
}

/// Params holding the position of a step's first token.
pub trait PositionParams: bytemuck::Pod {
    fn set_pos0(&mut self, pos0: u32);
}

/// A dispatch whose params follow the position, rewritten (not rebuilt) each step.
pub struct Positioned<P> {
    pub dispatch: Dispatch,
    params: P,
}

impl<P: PositionParams> Positioned<P> {
    pub fn new(dispatch: Dispatch, params: P) -> Positioned<P> {
        Positioned { dispatch, params }
    }

    /// Moves the step's tokens to positions `pos0..`.
    pub fn set_position(&mut self, queue: &wgpu::Queue, pos0: u32) {
        self.params.set_pos0(pos0);
        self.dispatch.write_params(queue, &self.params);
    }
}
