//! `shaders/gdn/delta_rule.wgsl`: the gated delta rule of one layer over a step's tokens,
//! reading the conv's output; its split (`gdn/delta_rule_columns.wgsl`) is shared with
//! [`super::conv_delta_rule`].

use crate::error::GpuError;
use crate::loader::config::GdnConfig;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Columns of one value head per workgroup, and column slices per column (the
/// invocations of a workgroup are COLS x SLICES).
const COLS: u32 = 32;
const SLICES: u32 = 4;
/// Largest key head dim: each invocation keeps `d_k / SLICES` state entries in registers.
const MAX_D_K: u32 = 512;

kernel_params! {
    /// `shaders/gdn/delta_rule.wgsl`'s `Params` (the key head dim is the constant `D_K`).
    pub struct DeltaRuleParams {
        pub n_k_heads: u32,
        pub n_v_heads: u32,
        pub d_v: u32,
        pub n_tokens: u32,
        pub channels: u32,
        pub eps: f32,
        pub _pad: [u32; 2],
    }
}

kernel_io! {
    /// The buffers of [`delta_rule`].
    pub struct DeltaRuleIo {
        conv_out: Read "[n_tokens, conv_channels] f32: q | k | v after the conv and SiLU",
        beta_raw: Read "[n_tokens, n_v_heads] f32: ssm_beta projection, before the sigmoid",
        alpha: Read "[n_tokens, n_v_heads] f32: ssm_alpha projection",
        dt_bias: Read "[n_v_heads] f32",
        a_neg: Read "[n_v_heads] f32: -exp(A_log)",
        out: ReadWrite "[n_tokens, n_v_heads, d_v] f32",
        state: ReadWrite "[n_v_heads, d_k, d_v] f32",
    }
}

/// The kernel for key heads of `d_k` dims (a register array's size, so a constant).
pub fn declaration(d_k: u32) -> Declaration {
    columns_split(
        Declaration::of::<DeltaRuleParams, DeltaRuleIo>("delta_rule", "gdn/delta_rule.wgsl"),
        d_k,
    )
}

/// `d`, a kernel built on `gdn/delta_rule_columns.wgsl`, with the rule joined in and its
/// split's sizes for key heads of `d_k` dims.
pub(crate) fn columns_split(d: Declaration, d_k: u32) -> Declaration {
    d.include(["gdn/delta_rule_columns.wgsl"])
        .constant("D_K", d_k)
        .constant("COLS", COLS)
        .constant("SLICES", SLICES)
        .constant("WG", COLS * SLICES)
}

/// Refuses key heads the split cannot hold in registers.
pub(crate) fn check_key_dim(entry: &str, d_k: u32) -> Result<(), GpuError> {
    if d_k % SLICES != 0 || d_k > MAX_D_K {
        return Err(GpuError::Shape(format!(
            "{entry}: key head dim {d_k} must be a multiple of {SLICES} and at most {MAX_D_K}"
        )));
    }
    Ok(())
}

/// The split's grid: a workgroup per value head and [`COLS`] of its columns.
pub(crate) fn columns_grid(g: &GdnConfig) -> [u32; 3] {
    [g.n_v_heads, g.d_v.div_ceil(COLS), 1]
}

/// The gated delta rule over `n_tokens` tokens (q/k L2 norm, decay, delta update, readout),
/// state read and written once.
pub fn delta_rule(
    ctx: &GpuContext,
    cache: &PipelineCache,
    g: &GdnConfig,
    n_tokens: u32,
    eps: f32,
    io: DeltaRuleIo<'_>,
) -> Result<Dispatch, GpuError> {
    check_key_dim("delta_rule", g.d_k)?;
    let params = DeltaRuleParams {
        n_k_heads: g.n_k_heads,
        n_v_heads: g.n_v_heads,
        d_v: g.d_v,
        n_tokens,
        channels: g.conv_channels() as u32,
        eps,
        _pad: [0; 2],
    };
    let kernel = Kernel::DeltaRule { d_k: g.d_k };
    Dispatch::new(ctx, cache, kernel, &params, &io, columns_grid(g))
}
