//! `shaders/gdn/conv_delta_rule.wgsl`: one decode step of a Gated DeltaNet layer's
//! recurrence (causal conv with SiLU, q/k L2 norms, gated delta rule) in one dispatch.

use crate::error::GpuError;
use crate::loader::config::GdnConfig;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::gdn::causal_conv1d::MAX_CONV_TAPS;
use crate::runtime::ops::gdn::delta_rule::{check_key_dim, columns_grid, columns_split};
use crate::runtime::ops::step::STEP_WGSL;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

kernel_params! {
    /// `shaders/gdn/conv_delta_rule.wgsl`'s `Params` (the key head dim is the constant `D_K`).
    pub struct ConvDeltaRuleParams {
        pub n_k_heads: u32,
        pub n_v_heads: u32,
        pub d_v: u32,
        /// Always 1.
        pub n_tokens: u32,
        pub channels: u32,
        pub eps: f32,
        pub taps: u32,
        /// The token's row in qkv, beta_raw, alpha and out.
        pub row: u32,
    }
}

kernel_io! {
    /// The buffers of [`conv_delta_rule`].
    pub struct ConvDeltaRuleIo {
        qkv: Read "[row + 1, conv_channels] f32: the token's qkv projections, q | k | v",
        conv_w: Read "[conv_channels, taps] f32: ssm_conv1d",
        conv_state: ReadWrite "[taps, conv_channels] f32: the ring of past inputs, position p in row p % taps",
        step: Read "[2] u32: the step's position (common/step.wgsl)",
        beta_raw: Read "[row + 1, n_v_heads] f32: ssm_beta projection, before the sigmoid",
        alpha: Read "[row + 1, n_v_heads] f32: ssm_alpha projection",
        dt_bias: Read "[n_v_heads] f32",
        a_neg: Read "[n_v_heads] f32: -exp(A_log)",
        out: ReadWrite "[row + 1, n_v_heads, d_v] f32",
        state: ReadWrite "[n_v_heads, d_k, d_v] f32",
    }
}

/// The kernel for key heads of `d_k` dims (a register array's size, so a constant).
pub fn declaration(d_k: u32) -> Declaration {
    let d = Declaration::of::<ConvDeltaRuleParams, ConvDeltaRuleIo>(
        "conv_delta_rule",
        "gdn/conv_delta_rule.wgsl",
    )
    .include([STEP_WGSL]);
    columns_split(d, d_k)
}

/// One token's conv (updating the ring `conv_state` at the position `step` holds) and
/// gated delta rule (updating `state`), its inputs and output at row `row` of their buffers
/// (a batched step's sequence reads and writes its row of the batch's in place).
pub fn conv_delta_rule(
    ctx: &GpuContext,
    cache: &PipelineCache,
    g: &GdnConfig,
    (eps, row): (f32, u32),
    io: ConvDeltaRuleIo<'_>,
) -> Result<Dispatch, GpuError> {
    check_key_dim("conv_delta_rule", g.d_k)?;
    let taps = g.conv_kernel;
    if taps == 0 || taps > MAX_CONV_TAPS {
        return Err(GpuError::Shape(format!(
            "conv_delta_rule: {taps} conv taps (1 to {MAX_CONV_TAPS})"
        )));
    }
    let params = ConvDeltaRuleParams {
        n_k_heads: g.n_k_heads,
        n_v_heads: g.n_v_heads,
        d_v: g.d_v,
        n_tokens: 1,
        channels: g.conv_channels() as u32,
        eps,
        taps,
        row,
    };
    let kernel = Kernel::ConvDeltaRule { d_k: g.d_k };
    Dispatch::new(ctx, cache, kernel, &params, &io, columns_grid(g))
}
