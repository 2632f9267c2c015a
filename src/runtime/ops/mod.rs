//! Kernel launchers, one folder per shader family and one file per kernel: its params,
//! its bindings by name, its [`Declaration`](crate::runtime::kernel::Declaration) and the
//! launcher. Each op builds its pipeline, params buffer and bind group once; afterwards it
//! only records dispatches.

pub mod attention;
pub mod copy_floats;
pub mod gdn;
pub mod linear;
pub mod moe;
pub mod norm;
pub mod sample;
pub mod step;

use std::sync::Arc;

use crate::error::GpuError;
use crate::runtime::direct::{DirectBinding, DirectRecorder};
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{KernelIo, KernelParams};
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
/// kernel's bindings struct in order) and the workgroup grid. Params are a read-only storage
/// buffer rather than a uniform one: lavapipe recompiles a shader at every dispatch whose
/// uniform values changed.
pub struct Dispatch {
    pipeline: Arc<wgpu::ComputePipeline>,
    bind: wgpu::BindGroup,
    grid: [u32; 3],
    params: wgpu::Buffer,
    kernel: Kernel,
    /// The variant the pipeline was built in, so a direct binding builds the same one.
    variant: Variant,
    entry: &'static str,
    /// The kernel's buffers after the params, in binding order.
    bound: Vec<wgpu::Buffer>,
    /// The same dispatch for direct recording, once [`Dispatch::bind_direct`] made it.
    direct: Option<Box<DirectBinding>>,
}

/// Where dispatches are recorded: a wgpu compute pass, or a direct step on Vulkan.
pub trait Record {
    fn record(&mut self, dispatch: &Dispatch);

    /// Records `dispatches`, which the caller vouches need no order among themselves (each
    /// reads and writes only what none of the others writes): one after another by default.
    fn record_together(&mut self, dispatches: &[&Dispatch]) {
        dispatches.iter().for_each(|d| self.record(d));
    }
}

/// Records independent sequences of dispatches (the rows of a batched step, each session's
/// draw) stage by stage: every sequence's first dispatch together, then every second. Each
/// sequence must read and write only what no other writes; sequences of different lengths
/// are recorded one after another.
pub fn record_stages<R: Record>(rec: &mut R, sequences: &[Vec<&Dispatch>]) {
    let stages = sequences.first().map_or(0, Vec::len);
    if sequences.iter().any(|s| s.len() != stages) {
        sequences.iter().flatten().for_each(|d| d.encode(rec));
        return;
    }
    for stage in 0..stages {
        let together: Vec<&Dispatch> = sequences.iter().map(|s| s[stage]).collect();
        rec.record_together(&together);
    }
}

impl Record for wgpu::ComputePass<'_> {
    fn record(&mut self, d: &Dispatch) {
        self.set_pipeline(&d.pipeline);
        self.set_bind_group(0, &d.bind, &[]);
        self.dispatch_workgroups(d.grid[0], d.grid[1], d.grid[2]);
    }
}

impl Record for DirectRecorder<'_> {
    fn record(&mut self, d: &Dispatch) {
        self.dispatch(d.direct.as_deref(), d.grid, d.entry);
    }

    fn record_together(&mut self, dispatches: &[&Dispatch]) {
        let each: Vec<_> = dispatches
            .iter()
            .map(|d| (d.direct.as_deref(), d.grid, d.entry))
            .collect();
        self.dispatch_together(&each);
    }
}

impl Dispatch {
    /// `workgroups` in a line (laid out as a 2-D grid past the per-dimension limit).
    pub fn line<P: KernelParams, Io: KernelIo>(
        ctx: &GpuContext,
        cache: &PipelineCache,
        kernel: Kernel,
        params: &P,
        io: &Io,
        workgroups: u32,
    ) -> Result<Dispatch, GpuError> {
        let (x, y) = grid(workgroups, ctx.limits.max_compute_workgroups_per_dimension);
        Self::new(ctx, cache, kernel, params, io, [x, y, 1])
    }

    /// `kernel` over an explicit grid, its bindings from `io`, which must be the kernel's
    /// bindings struct and `params` its params struct.
    pub fn new<P: KernelParams, Io: KernelIo>(
        ctx: &GpuContext,
        cache: &PipelineCache,
        kernel: Kernel,
        params: &P,
        io: &Io,
        grid: [u32; 3],
    ) -> Result<Dispatch, GpuError> {
        let decl = kernel.declaration()?;
        if decl.bindings != Io::BINDINGS || decl.params != P::FIELDS {
            return Err(GpuError::Pipeline(format!(
                "{}: bound with {} and {}, which are not its bindings and params",
                decl.entry,
                std::any::type_name::<Io>(),
                std::any::type_name::<P>()
            )));
        }
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        if grid.iter().any(|&g| g > max) {
            return Err(GpuError::Shape(format!(
                "{}: grid {grid:?} exceeds {max} workgroups per dimension",
                decl.entry
            )));
        }
        let variant = Variant::for_features(&ctx.features);
        let pipeline = cache.get(&ctx.device, kernel, variant)?;
        let params_buf = params_buffer(ctx, decl.entry, params);
        let buffers = io.buffers();
        let entries: Vec<wgpu::BindGroupEntry<'_>> = std::iter::once(&params_buf)
            .chain(buffers)
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        ctx.created.bind_group();
        let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(decl.entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Ok(Dispatch {
            pipeline,
            bind,
            grid: grid.map(|g| g.max(1)),
            params: params_buf,
            kernel,
            variant,
            entry: decl.entry,
            bound: io.buffers().into_iter().cloned().collect(),
            direct: None,
        })
    }

    /// Builds this dispatch's direct binding where the device records steps directly (see
    /// `runtime::direct`); a no-op elsewhere or when it has one. Only what a direct step
    /// records is bound: each binding compiles its kernel a second time on first use. A
    /// binding the driver refuses leaves the dispatch without one (logged), and the steps
    /// that hold it to wgpu's pass.
    pub fn bind_direct(&mut self, ctx: &GpuContext) -> Result<(), GpuError> {
        if let (Some(direct), None) = (&ctx.direct, &self.direct) {
            let decl = self.kernel.declaration()?;
            let buffers: Vec<&wgpu::Buffer> =
                std::iter::once(&self.params).chain(&self.bound).collect();
            match direct.bind(self.kernel, self.variant, &decl, &buffers) {
                Ok(binding) => self.direct = Some(Box::new(binding)),
                Err(e) => log::debug!("{}: no direct binding: {e}", decl.entry),
            }
        }
        Ok(())
    }

    /// Replaces the params (per-step values: position, sampling draw) before the next submit.
    pub fn write_params<P: bytemuck::Pod>(&self, queue: &wgpu::Queue, params: &P) {
        queue.write_buffer(&self.params, 0, bytemuck::bytes_of(params));
    }

    /// Workgroups the grid launches.
    pub fn workgroups(&self) -> u64 {
        self.grid.iter().map(|&g| g as u64).product()
    }

    /// Changes the workgroup grid (a dispatch whose extent follows the position).
    pub fn set_grid(&mut self, grid: [u32; 3]) {
        self.grid = grid.map(|g| g.max(1));
    }

    pub fn encode<R: Record>(&self, rec: &mut R) {
        rec.record(self);
    }
}
