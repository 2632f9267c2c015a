//! Every kernel's parameters as `#[repr(C)]` structs, field for field the WGSL `struct Params`
//! of its shader (u32/i32/f32 only, padded to 16 bytes). These are the source of truth; a
//! naga test checks each WGSL struct has the same size.

use std::mem::size_of;

use bytemuck::{Pod, Zeroable};

/// `shaders/linear/matvec.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct MatvecParams {
    pub rows: u32,
    /// 32-element units per row (cols / 32).
    pub units: u32,
    pub row_bytes: u32,
    /// Byte offset of row 0 in the weight buffer.
    pub weight_offset: u32,
    pub x_offset: u32,
    pub y_offset: u32,
    /// `matvec_experts`: the experts this buffer holds, and each slot's x and y strides.
    pub first_expert: u32,
    pub n_experts: u32,
    pub x_stride: u32,
    pub y_stride: u32,
    /// Slots sharing one x row (k for gate/up, 1 for down).
    pub x_group: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<MatvecParams>() == 48);

/// `shaders/norm/row_norms.wgsl` (every entry point): rows of `n`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq)]
pub struct NormParams {
    pub n: u32,
    pub rows: u32,
    pub eps: f32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<NormParams>() == 16);

/// `shaders/gdn/causal_conv1d.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct ConvParams {
    pub channels: u32,
    pub n_tokens: u32,
    pub taps: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ConvParams>() == 16);

/// `shaders/gdn/delta_rule.wgsl` (the key head dim is a shader constant).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq)]
pub struct DeltaRuleParams {
    pub n_k_heads: u32,
    pub n_v_heads: u32,
    pub d_v: u32,
    pub n_tokens: u32,
    pub channels: u32,
    pub eps: f32,
    pub _pad: [u32; 2],
}
const _: () = assert!(size_of::<DeltaRuleParams>() == 32);

/// `shaders/attention/qk_norm_rope.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq)]
pub struct QkNormRopeParams {
    pub n_tokens: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub n_rot: u32,
    pub pos0: u32,
    pub q_stride: u32,
    pub q_head_stride: u32,
    pub eps: f32,
    pub _pad: [u32; 3],
}
const _: () = assert!(size_of::<QkNormRopeParams>() == 48);

/// `shaders/attention/flash_attention.wgsl` (both entry points).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct FlashAttentionParams {
    pub n_tokens: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub pos0: u32,
    pub n_chunks: u32,
    pub q_stride: u32,
    pub q_head_stride: u32,
    pub gated: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(size_of::<FlashAttentionParams>() == 48);

/// `shaders/moe/router.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct RouterParams {
    pub n_expert: u32,
    pub k: u32,
    pub n_tokens: u32,
    pub renormalise: u32,
}
const _: () = assert!(size_of::<RouterParams>() == 16);

/// `shaders/moe/combine.wgsl` (both entry points).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct CombineParams {
    pub n: u32,
    pub width: u32,
    pub slot_stride: u32,
    pub up_offset: u32,
    pub k: u32,
    pub with_shared: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(size_of::<CombineParams>() == 32);

/// `shaders/sample/argmax.wgsl` (both entry points).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct ArgmaxParams {
    pub n: u32,
    pub n_partials: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(size_of::<ArgmaxParams>() == 16);

/// `shaders/linear/embed.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct EmbedParams {
    pub n_tokens: u32,
    pub units: u32,
    pub row_bytes: u32,
    pub first_row: u32,
    pub rows: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(size_of::<EmbedParams>() == 32);

/// `shaders/linear/matmul.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct MatmulParams {
    pub rows: u32,
    pub units: u32,
    pub row_bytes: u32,
    pub n_tokens: u32,
    pub x_stride: u32,
    pub y_stride: u32,
    pub x_offset: u32,
    pub y_offset: u32,
    /// `matmul_experts`: the first expert this buffer holds, and slots per x row.
    pub first_expert: u32,
    pub x_group: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(size_of::<MatmulParams>() == 48);

/// `shaders/moe/group.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq)]
pub struct GroupParams {
    pub n_expert: u32,
    pub slots: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(size_of::<GroupParams>() == 16);

/// `shaders/sample/top_k.wgsl` (both entry points).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq)]
pub struct TopKParams {
    pub n: u32,
    pub n_partials: u32,
    pub k: u32,
    pub _pad: u32,
    pub temperature: f32,
    pub top_p: f32,
    /// The host's uniform draw in [0, 1).
    pub u: f32,
    pub min_p: f32,
}
const _: () = assert!(size_of::<TopKParams>() == 32);

/// `shaders/sample/penalty.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq)]
pub struct PenaltyParams {
    pub n_recent: u32,
    pub n_vocab: u32,
    pub penalty: f32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<PenaltyParams>() == 16);

/// `shaders/attention/flash_prefill.wgsl` (the head dim is a shader constant too).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct FlashPrefillParams {
    pub n_tokens: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub pos0: u32,
    pub q_stride: u32,
    pub q_head_stride: u32,
    pub gated: u32,
}
const _: () = assert!(size_of::<FlashPrefillParams>() == 32);

/// The Rust size of each shader's `Params`, for the naga size check.
pub const PARAMS_SIZES: &[(&str, usize)] = &[
    ("linear/matvec.wgsl", size_of::<MatvecParams>()),
    ("norm/row_norms.wgsl", size_of::<NormParams>()),
    ("gdn/causal_conv1d.wgsl", size_of::<ConvParams>()),
    ("gdn/delta_rule.wgsl", size_of::<DeltaRuleParams>()),
    ("attention/qk_norm_rope.wgsl", size_of::<QkNormRopeParams>()),
    (
        "attention/flash_attention.wgsl",
        size_of::<FlashAttentionParams>(),
    ),
    (
        "attention/flash_prefill.wgsl",
        size_of::<FlashPrefillParams>(),
    ),
    ("moe/router.wgsl", size_of::<RouterParams>()),
    ("moe/combine.wgsl", size_of::<CombineParams>()),
    ("sample/argmax.wgsl", size_of::<ArgmaxParams>()),
    ("linear/embed.wgsl", size_of::<EmbedParams>()),
    ("linear/matmul.wgsl", size_of::<MatmulParams>()),
    ("sample/top_k.wgsl", size_of::<TopKParams>()),
    ("sample/penalty.wgsl", size_of::<PenaltyParams>()),
    ("moe/group.wgsl", size_of::<GroupParams>()),
];
