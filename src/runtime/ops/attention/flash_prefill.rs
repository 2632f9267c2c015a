//! `shaders/attention/flash_prefill.wgsl`: tiled causal flash attention for a block of
//! queries, gate included; and `flash_prefill_gqa.wgsl`, its GPU form: every K and V row
//! read once for the query heads sharing it, both products on cooperative matrices.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::attention::qk_norm_rope::kv_file;
use crate::runtime::ops::attention::AttentionStep;
use crate::runtime::ops::linear::matmul::{cooperative, form_size, MatmulForm};
use crate::runtime::ops::step::STEP_WGSL;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Invocations per workgroup, and key positions per tile of the online softmax.
const WG: u32 = 64;
const KT: u32 = 16;

kernel_params! {
    /// `shaders/attention/flash_prefill.wgsl`'s `Params` (the head dim is the constant `HD`
    /// too).
    pub struct FlashPrefillParams {
        pub n_tokens: u32,
        pub n_head: u32,
        pub n_head_kv: u32,
        pub head_dim: u32,
        pub q_stride: u32,
        pub q_head_stride: u32,
        pub gated: u32,
        pub _pad: u32,
    }
}

kernel_io! {
    /// The buffers of [`flash_prefill`].
    pub struct FlashPrefillIo {
        q: Read "[n_tokens, n_head, head_dim] f32: normalised, rotated queries",
        k_cache: ReadWrite "[capacity, n_head_kv, head_dim] KV elements",
        v_cache: ReadWrite "[capacity, n_head_kv, head_dim] KV elements",
        q_in: Read "[n_tokens, q_stride] f32: attn_q output, for the gate",
        out: ReadWrite "[n_tokens, n_head, head_dim] f32",
        step: Read "[2] u32: the step's position (common/step.wgsl)",
    }
}

/// Queries per workgroup: as many as keep the staged query tile within 8 KiB of workgroup
/// memory, 1 to 16.
pub fn query_tile(head_dim: u32) -> u32 {
    (2048 / head_dim.max(1)).clamp(1, 16)
}

/// The kernel for heads of `head_dim` (register arrays' sizes, so constants).
pub fn declaration(head_dim: u32, kv_f16: bool) -> Declaration {
    Declaration::of::<FlashPrefillParams, FlashPrefillIo>(
        "flash_prefill",
        "attention/flash_prefill.wgsl",
    )
    .include([
        kv_file(kv_f16),
        STEP_WGSL,
        "attention/flash_prefill_io.wgsl",
    ])
    .constant("HD", head_dim)
    .constant("QT", query_tile(head_dim))
    .constant("KT", KT)
    .constant("WG", WG)
}

/// Query rows (query tokens x the heads of a KV head) of a `flash_prefill_gqa` workgroup.
pub const GQA_ROWS: u32 = 32;
/// Key positions a `flash_prefill_gqa` tile can take, preferred first: the largest whose
/// tiles fit the adapter's workgroup memory (Qwen3.5's heads of 256 take 16 in 32 KiB).
pub const GQA_KEY_TILES: [u32; 2] = [32, 16];
/// Subgroups of a `flash_prefill_gqa` workgroup at the adapter's largest subgroup size.
const GQA_TEAMS: u32 = 4;

/// The GPU form for heads of `head_dim`, `group` query heads a KV head, key tiles of
/// `key_tile` (one of [`GQA_KEY_TILES`]), in cooperative `form` (register arrays' and
/// tiles' sizes, so constants).
pub fn gqa_declaration(
    head_dim: u32,
    kv_f16: bool,
    group: u32,
    key_tile: u32,
    form: MatmulForm,
) -> Result<Declaration, GpuError> {
    let size = form_size(form);
    let shaped = size != 0 && group != 0 && GQA_ROWS % group == 0 && head_dim % size == 0;
    if !shaped || !GQA_KEY_TILES.contains(&key_tile) {
        return Err(GpuError::Pipeline(format!(
            "flash_prefill_gqa: heads of {head_dim} in groups of {group}, key tiles of \
             {key_tile}, in {form:?}"
        )));
    }
    let decl = Declaration::of::<FlashPrefillParams, FlashPrefillIo>(
        "flash_prefill_gqa",
        "attention/flash_prefill_gqa.wgsl",
    )
    .include([
        kv_file(kv_f16),
        STEP_WGSL,
        "attention/flash_prefill_io.wgsl",
    ])
    .constant("HD", head_dim)
    .constant("GROUP", group)
    .constant("ROWS", GQA_ROWS)
    .constant("KT", key_tile)
    .constant(
        "OUT_TEAM_BLOCKS",
        ((GQA_ROWS / size) * (head_dim / size)).div_ceil(GQA_TEAMS),
    );
    let blocks = (GQA_ROWS / size) * (key_tile / size);
    cooperative(decl, form, GQA_TEAMS, blocks)
}

/// Workgroup memory of `flash_prefill_gqa` for heads of `head_dim` and key tiles of
/// `key_tile`, bytes: the f16 queries, probabilities and K or V rows, the f32 scores (or
/// four output blocks of 16 x 16), two f32 a row, and a 16 x 16 block of the zeros the
/// matrices start from.
pub fn gqa_workgroup_bytes(head_dim: u32, key_tile: u32) -> u32 {
    let halves = (GQA_ROWS + key_tile) * (head_dim + 8) + GQA_ROWS * (key_tile + 8);
    let floats = (GQA_ROWS * (key_tile + 4)).max(4 * 16 * 16) + 2 * GQA_ROWS + 16 * 16;
    2 * halves + 4 * floats
}

/// How `flash_prefill_gqa` runs a step on an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GqaShape {
    pub form: MatmulForm,
    pub key_tile: u32,
}

/// The shape `flash_prefill_gqa` runs this step in on this adapter, or `None` for
/// `flash_prefill`: the adapter's matmul form must be cooperative (or the emulation, in
/// tests), the heads of a KV head must divide the workgroup's rows and the head dim the
/// blocks, and some key tile must fit the adapter's workgroup memory.
pub fn gqa_shape(ctx: &GpuContext, step: &AttentionStep<'_>) -> Option<GqaShape> {
    let a = step.config;
    let limit = ctx.limits.max_compute_workgroup_storage_size;
    gqa_shape_for(
        ctx.features.matmul,
        a.n_head,
        a.n_head_kv,
        a.head_dim,
        limit,
    )
}

/// [`gqa_shape`] for `n_head` query heads over `n_kv` KV heads of `head_dim`, in `form`,
/// with `limit` bytes of workgroup memory.
pub fn gqa_shape_for(
    form: MatmulForm,
    n_head: u32,
    n_kv: u32,
    head_dim: u32,
    limit: u32,
) -> Option<GqaShape> {
    let size = form_size(form);
    let group = n_head / n_kv.max(1);
    let shaped = size != 0 && group != 0 && GQA_ROWS % group == 0 && head_dim % size == 0;
    let key_tile = GQA_KEY_TILES
        .into_iter()
        .find(|&kt| kt % size.max(1) == 0 && gqa_workgroup_bytes(head_dim, kt) <= limit)?;
    shaped.then_some(GqaShape { form, key_tile })
}

/// The tiled prefill attention of one layer (the causal mask follows the position).
pub type FlashPrefill = Dispatch;

/// Tiled causal flash attention for the step's queries, gate included.
pub fn flash_prefill(
    ctx: &GpuContext,
    cache: &PipelineCache,
    step: AttentionStep<'_>,
    io: FlashPrefillIo<'_>,
) -> Result<FlashPrefill, GpuError> {
    step.check_geometry()?;
    if step.first_row != 0 {
        return Err(GpuError::Shape(format!(
            "flash_prefill: a prompt step reads its rows from 0, not {}",
            step.first_row
        )));
    }
    let a = step.config;
    let (q_stride, q_head_stride) = step.q_strides();
    let params = FlashPrefillParams {
        n_tokens: step.n_tokens,
        n_head: a.n_head,
        n_head_kv: a.n_head_kv,
        head_dim: a.head_dim,
        q_stride,
        q_head_stride,
        gated: u32::from(a.output_gate),
        _pad: 0,
    };
    step.write(&ctx.queue);
    if let Some(GqaShape { form, key_tile }) = gqa_shape(ctx, &step) {
        let group = a.n_head / a.n_head_kv;
        let tiles = step.n_tokens.div_ceil(GQA_ROWS / group);
        let kernel = Kernel::FlashPrefillGqa {
            head_dim: a.head_dim,
            kv_f16: step.kv_f16,
            group,
            key_tile,
            form,
        };
        return Dispatch::new(ctx, cache, kernel, &params, &io, [a.n_head_kv, tiles, 1]);
    }
    let tiles = step.n_tokens.div_ceil(query_tile(a.head_dim));
    let kernel = Kernel::FlashPrefill {
        head_dim: a.head_dim,
        kv_f16: step.kv_f16,
    };
    Dispatch::new(ctx, cache, kernel, &params, &io, [a.n_head, tiles, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOP: MatmulForm = MatmulForm::Coop {
        size: 16,
        subgroup: 32,
    };

    /// Qwen3.5's 16/2 heads of 256 take 32-position key tiles in NVIDIA's 48 KiB, 16 in
    /// Apple's and lavapipe's 32 KiB, and fall back below that; qwen3moe's 32/4 heads of 128
    /// take 32; 12/2 heads (6 a KV head) never divide the 32 rows; the tiles' forms never run
    /// it.
    #[test]
    fn gqa_shapes_follow_the_group_the_head_dim_and_the_memory() {
        let tile = |n_head, n_kv, hd, limit| {
            gqa_shape_for(COOP, n_head, n_kv, hd, limit).map(|s| s.key_tile)
        };
        assert_eq!(tile(16, 2, 256, 48 * 1024), Some(32));
        assert_eq!(tile(16, 2, 256, 32 * 1024), Some(16));
        assert_eq!(tile(16, 2, 256, 16 * 1024), None);
        assert_eq!(tile(32, 4, 128, 32 * 1024), Some(32));
        assert_eq!(tile(12, 2, 128, 64 * 1024), None);
        assert_eq!(gqa_workgroup_bytes(256, 16), 32_256);
        for form in [
            MatmulForm::Tiled,
            MatmulForm::TiledHalf,
            MatmulForm::TiledInt8,
        ] {
            assert_eq!(gqa_shape_for(form, 16, 2, 256, 64 * 1024), None);
        }
        let emulated = gqa_shape_for(MatmulForm::CoopEmulated, 4, 2, 16, 32 * 1024);
        assert_eq!(emulated.map(|s| s.key_tile), Some(32));
    }
}
