//! Launchers of `shaders/norm/`: one workgroup per row of `n` (the shared part is
//! `norm/row_scale.wgsl`).

pub mod add_rms_norm;
pub mod gated_rms_norm;
pub mod rms_norm;

pub use add_rms_norm::{add_rms_norm, AddRmsNormIo};
pub use gated_rms_norm::{gated_rms_norm, GatedRmsNormIo};
pub use rms_norm::{rms_norm, RmsNormIo};

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_params, Declaration, KernelIo};
use crate::runtime::ops::{grid, Dispatch};
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Invocations per row.
pub const WG: u32 = 64;

kernel_params! {
    /// `shaders/norm/row_scale.wgsl`'s `Params`, shared by every row norm.
    pub struct NormParams {
        pub n: u32,
        pub rows: u32,
        pub eps: f32,
        pub _pad: u32,
    }
}

/// Rows of `n` values and the epsilon every norm takes.
#[derive(Debug, Clone, Copy)]
pub struct Rows {
    pub n: u32,
    pub rows: u32,
    pub eps: f32,
}

/// The declaration of the row norm at `entry` of `norm/<entry>.wgsl`.
fn row_norm<Io: KernelIo>(entry: &'static str, file: &'static str) -> Declaration {
    Declaration::of::<NormParams, Io>(entry, file)
        .include(["norm/row_scale.wgsl"])
        .constant("WG", WG)
}

/// One workgroup per row.
fn dispatch<Io: KernelIo>(
    ctx: &GpuContext,
    cache: &PipelineCache,
    kernel: Kernel,
    r: Rows,
    io: &Io,
) -> Result<Dispatch, GpuError> {
    if r.n == 0 || r.rows == 0 {
        return Err(GpuError::Shape(format!(
            "{kernel:?}: {} rows of {}",
            r.rows, r.n
        )));
    }
    let params = NormParams {
        n: r.n,
        rows: r.rows,
        eps: r.eps,
        _pad: 0,
    };
    let (gx, gy) = grid(r.rows, ctx.limits.max_compute_workgroups_per_dimension);
    if gy > 1 {
        return Err(GpuError::Shape(format!(
            "{kernel:?}: {} rows exceed one grid row",
            r.rows
        )));
    }
    Dispatch::new(ctx, cache, kernel, &params, io, [gx, 1, 1])
}
