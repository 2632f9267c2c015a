//! `shaders/linear/matmul.wgsl`: `Y = X W^T` for a block of tokens (prefill).

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::{check_strided, stage_int8_file, weight_includes, WeightUse};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

/// Rows per matmul workgroup: each invocation owns 4 rows (16 apart) of the tile (8 in
/// the f16 and 8-bit tiles of [`HALF_TILE`] rows).
pub const TILE: u32 = 64;
pub const HALF_TILE: u32 = 128;
/// Invocations per matmul workgroup: 16 row groups x 16 token groups.
pub const WG: u32 = 256;
/// Token tiles the kernels are built for: each invocation owns `tokens / 16` of a tile's
/// tokens. The dense matmul takes the largest; `matmul_experts` sizes its tile to the
/// tokens an expert gets.
pub const TOKEN_TILES: [u32; 3] = [16, 32, 64];
/// The dense matmul's token tile.
pub const TOKENS: u32 = 64;

kernel_params! {
    /// `shaders/linear/matmul_tile.wgsl`'s `Params`, shared by matmul and matmul_experts.
    pub struct MatmulParams {
        pub rows: u32,
        pub units: u32,
        pub row_bytes: u32,
        pub n_tokens: u32,
        pub x_stride: u32,
        pub y_stride: u32,
        pub x_offset: u32,
        pub y_offset: u32,
        /// `matmul_experts`: the first slab this buffer holds, slots per x row, the slabs it
        /// holds, and whether they are the pool's (1) or the host copy's (0).
        pub first_slab: u32,
        pub x_group: u32,
        pub slabs: u32,
        pub from_pool: u32,
    }
}

kernel_io! {
    /// The buffers of one piece of [`matmul`].
    pub struct MatmulIo {
        weights: Read "[rows, row_bytes] GGUF blocks as u32 words",
        x: Read "[n_tokens, x_stride] f32",
        y: ReadWrite "[n_tokens, y_stride] f32",
    }
}

/// How the prefill matmuls multiply their tiles. Every form computes tiles of
/// [`MatmulForm::tile_rows`] rows by a token tile, from the same staging decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MatmulForm {
    /// f32 FMAs over f32 workgroup-memory tiles (`linear/matmul_tile.wgsl`): CPU devices
    /// and adapters without f16.
    Tiled,
    /// f32 FMAs over f16 tiles of twice the rows, double-buffered
    /// (`linear/matmul_half_tile.wgsl`): GPUs with f16 and without cooperative matrices.
    TiledHalf,
    /// Packed 8-bit dot products (`dot4I8Packed`) of the weights' integer quants and the
    /// inputs quantized per 16 elements, in tiles shaped as the f16 ones
    /// (`linear/matmul_int8_tile.wgsl`): GPUs without cooperative matrices that run
    /// those dot products natively. Types without 8-bit staging take the f32 tiles
    /// ([`MatmulForm::for_weights`]).
    TiledInt8,
    /// f16 cooperative matrices of `size` x `size` (one of [`COOP_SIZES`]) with f32
    /// accumulators (`linear/matmul_coop_tile.wgsl`): tensor cores, simdgroup matrices.
    /// A workgroup holds [`COOP_TEAMS`] subgroups of the adapter's largest size,
    /// `subgroup`.
    Coop { size: u32, subgroup: u32 },
    /// The cooperative tile with its matrix operations written out in plain WGSL
    /// (`linear/coop/emulated.wgsl`): conformance-tests the tile on devices without
    /// cooperative matrices, with the same f16 operands; never chosen for a run.
    CoopEmulated,
}

/// Cooperative-matrix sizes the kernels are written for, preferred first (NVIDIA and AMD
/// report 16 x 16 x 16 with f16 inputs, Apple 8 x 8 x 8).
pub const COOP_SIZES: [u32; 2] = [16, 8];
/// Subgroups in a cooperative-matrix workgroup when the adapter runs its largest size
/// (more, each owning fewer blocks, when it runs a smaller one).
pub const COOP_TEAMS: u32 = 8;
/// The emulated form's block size and team width.
const EMULATED_SIZE: u32 = 16;
const EMULATED_TEAM: u32 = 32;

/// Environment variable forcing the matmul's f16 tiles (`f16`) or f32 tiles (`f32`) whatever
/// the adapter has: to measure one form against another.
pub const MATMUL_ENV: &str = "QWEN_WGPU_MATMUL";

impl MatmulForm {
    /// How the form reads in an adapter line: `f32 tiles`, `coop 16x16 f16`.
    pub fn label(self) -> String {
        match self {
            MatmulForm::Tiled => "f32 tiles".into(),
            MatmulForm::TiledHalf => "f16 tiles".into(),
            MatmulForm::TiledInt8 => "i8 tiles".into(),
            MatmulForm::Coop { size, .. } => format!("coop {size}x{size} f16"),
            MatmulForm::CoopEmulated => "coop emulated".into(),
        }
    }

    /// Weight rows a workgroup's tile takes.
    pub fn tile_rows(self) -> u32 {
        match self {
            MatmulForm::TiledHalf | MatmulForm::TiledInt8 => HALF_TILE,
            _ => TILE,
        }
    }

    /// Workgroup memory the form's tiles take with token tiles of `tokens`, in bytes.
    pub fn workgroup_bytes(self, tokens: u32) -> u32 {
        match self {
            MatmulForm::Tiled => 2 * 32 * 16 * 16,
            // Two buffers of 32 elements of 128 rows and of 64 tokens, f16.
            MatmulForm::TiledHalf => 2 * 32 * (HALF_TILE + TOKENS) * 2,
            // Two buffers of two halves of rows and of tokens, each 16 byte quants and two
            // f32 factors.
            MatmulForm::TiledInt8 => 2 * 2 * (16 + 8) * (HALF_TILE + tokens),
            // a_half and b_half (40 f16 a row), c_tile (TILE + 4 f32 a token), and the
            // zeros the real matrices start from.
            MatmulForm::Coop { size, .. } => {
                80 * (TILE + tokens) + 4 * tokens * (TILE + 4) + 4 * size * size
            }
            MatmulForm::CoopEmulated => 80 * (TILE + tokens) + 4 * tokens * (TILE + 4),
        }
    }

    /// Whether [`MATMUL_ENV`] forces tiles (f16, 8-bit or f32) rather than cooperative
    /// matrices.
    pub fn forced_tiles() -> bool {
        matches!(
            std::env::var(MATMUL_ENV).as_deref(),
            Ok("f16") | Ok("i8") | Ok("f32")
        )
    }

    /// The form the matmuls of `ty` weights run in on a device of this form: the 8-bit
    /// tiles fall back to the f32 ones for the types they cannot stage (float weights keep
    /// their precision).
    pub fn for_weights(self, ty: GgmlType) -> MatmulForm {
        match self {
            MatmulForm::TiledInt8 if stage_int8_file(ty).is_none() => MatmulForm::Tiled,
            form => form,
        }
    }

    /// The form of a device: its cooperative form `coop` where it has one, else the 8-bit
    /// tiles on a GPU (`gpu`) whose driver reports packed 8-bit dot products as accelerated
    /// (`int8_dot`, as llama.cpp's Vulkan backend picks its integer-dot matmul), else the
    /// f16 tiles on a GPU with f16, else the f32 tiles, each where the workgroup memory has
    /// room; unless [`MATMUL_ENV`] forces tiles (`f32`, `f16`, `i8`).
    ///
    /// A CPU device keeps the f32 tiles although the f16 ones run faster there too
    /// (lavapipe, bench-qwen35moe pp128: 1.03 tok/s against 0.94): lavapipe is the device
    /// that proves the GPU path equals the f32 reference to 1e-4, and f16 operands move
    /// logits by 1e-3 (8-bit inputs by more).
    pub fn choose(
        coop: Option<MatmulForm>,
        gpu: bool,
        int8_dot: bool,
        features: wgpu::Features,
        limits: &wgpu::Limits,
    ) -> MatmulForm {
        let room = |form: MatmulForm| {
            form.workgroup_bytes(TOKENS) <= limits.max_compute_workgroup_storage_size
        };
        let half = features.contains(wgpu::Features::SHADER_F16) && room(MatmulForm::TiledHalf);
        let int8 = room(MatmulForm::TiledInt8);
        match std::env::var(MATMUL_ENV).as_deref() {
            Ok("f32") => MatmulForm::Tiled,
            Ok("f16") if half => MatmulForm::TiledHalf,
            Ok("i8") if int8 => MatmulForm::TiledInt8,
            Ok("f16") | Ok("i8") => MatmulForm::Tiled,
            _ => match coop {
                Some(form) => form,
                None if gpu && int8_dot && int8 => MatmulForm::TiledInt8,
                None if gpu && half => MatmulForm::TiledHalf,
                None => MatmulForm::Tiled,
            },
        }
    }

    /// The cooperative form an adapter supports, if any: f16 operands with f32
    /// accumulators in one of [`COOP_SIZES`], with f16 and subgroups enabled, and room for
    /// the tiles and a workgroup of [`COOP_TEAMS`] subgroups.
    pub fn for_adapter(
        features: wgpu::Features,
        matrices: &[wgpu::CooperativeMatrixProperties],
        subgroup_max: u32,
        limits: &wgpu::Limits,
    ) -> Option<MatmulForm> {
        use wgpu::CooperativeScalarType::{F16, F32};
        let needed = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP;
        let widest = MatmulForm::Coop {
            size: COOP_SIZES[0],
            subgroup: subgroup_max,
        };
        let room = limits.max_compute_workgroup_storage_size >= widest.workgroup_bytes(TOKENS)
            && limits.max_compute_invocations_per_workgroup >= COOP_TEAMS * subgroup_max
            && limits.max_compute_workgroup_size_x >= COOP_TEAMS * subgroup_max;
        if !features.contains(needed) || !room || subgroup_max == 0 {
            return None;
        }
        let size = COOP_SIZES.into_iter().find(|&size| {
            matrices.iter().any(|m| {
                (m.m_size, m.n_size, m.k_size) == (size, size, size)
                    && m.ab_type == F16
                    && m.cr_type == F32
            })
        })?;
        Some(MatmulForm::Coop {
            size,
            subgroup: subgroup_max,
        })
    }
}

/// The files and constants of both matmul kernels in `form`, with tiles of `tokens` tokens
/// (one of [`TOKEN_TILES`]).
pub(crate) fn tiled(
    decl: Declaration,
    ty: GgmlType,
    tokens: u32,
    form: MatmulForm,
) -> Result<Declaration, GpuError> {
    if !TOKEN_TILES.contains(&tokens) {
        return Err(GpuError::Pipeline(format!(
            "{}: token tile {tokens}, not one of {TOKEN_TILES:?}",
            decl.entry
        )));
    }
    let staging = match form {
        MatmulForm::TiledInt8 => WeightUse::StageInt8,
        _ => WeightUse::Stage,
    };
    let decl = decl
        .include(weight_includes(ty, staging)?)
        .include(["linear/matmul_params.wgsl", "linear/matmul_weights.wgsl"])
        .constant("TILE", form.tile_rows())
        .constant("TOKENS", tokens);
    if form == MatmulForm::TiledInt8 {
        return Ok(decl
            .include(["linear/matmul_int8_tile.wgsl"])
            .constant("WG", WG));
    }
    // The forms that stage floats share the rows past the matrix.
    let decl = decl.include(["linear/matmul_float_zeros.wgsl"]);
    match form {
        MatmulForm::Tiled => {
            return Ok(decl.include(["linear/matmul_tile.wgsl"]).constant("WG", WG))
        }
        MatmulForm::TiledHalf => {
            return Ok(decl
                .enable("f16")
                .include(["linear/matmul_half_tile.wgsl"])
                .constant("WG", WG))
        }
        MatmulForm::TiledInt8 | MatmulForm::Coop { .. } | MatmulForm::CoopEmulated => {}
    }
    let blocks = (tokens / form_size(form)) * (TILE / form_size(form));
    Ok(cooperative(decl, form, COOP_TEAMS, blocks)?.include(["linear/matmul_coop_tile.wgsl"]))
}

/// The block size of a cooperative form (0 for the tiled one).
pub(crate) fn form_size(form: MatmulForm) -> u32 {
    match form {
        MatmulForm::Tiled | MatmulForm::TiledHalf | MatmulForm::TiledInt8 => 0,
        MatmulForm::Coop { size, .. } => size,
        MatmulForm::CoopEmulated => EMULATED_SIZE,
    }
}

/// `decl` with the matrix operations of cooperative `form` (linear/coop/) and the constants
/// they and a kernel over them need: `SIZE`, `WG` (`teams` subgroups of the adapter's
/// largest size, or of the emulation's 32) and `TEAM_BLOCKS` (each team's share of
/// `blocks` SIZE x SIZE blocks when all `teams` run).
pub(crate) fn cooperative(
    decl: Declaration,
    form: MatmulForm,
    teams: u32,
    blocks: u32,
) -> Result<Declaration, GpuError> {
    let (size, wg, operations) = match form {
        MatmulForm::Coop { size: 16, subgroup } => (
            16,
            teams * subgroup,
            ["linear/coop/mat16.wgsl", "linear/coop/subgroup.wgsl"].as_slice(),
        ),
        MatmulForm::Coop { size: 8, subgroup } => (
            8,
            teams * subgroup,
            ["linear/coop/mat8.wgsl", "linear/coop/subgroup.wgsl"].as_slice(),
        ),
        MatmulForm::CoopEmulated => (
            EMULATED_SIZE,
            teams * EMULATED_TEAM,
            ["linear/coop/emulated.wgsl"].as_slice(),
        ),
        MatmulForm::Coop { .. }
        | MatmulForm::Tiled
        | MatmulForm::TiledHalf
        | MatmulForm::TiledInt8 => {
            return Err(GpuError::Pipeline(format!(
                "{}: {form:?} is not a cooperative form of sizes {COOP_SIZES:?}",
                decl.entry
            )))
        }
    };
    if wg == 0 || wg > 1024 {
        return Err(GpuError::Pipeline(format!(
            "{}: {form:?} makes workgroups of {wg} invocations",
            decl.entry
        )));
    }
    let mut decl = decl.enable("f16");
    if let MatmulForm::Coop { .. } = form {
        decl = decl.enable("wgpu_cooperative_matrix").with_subgroups();
    }
    Ok(decl
        .include(operations.iter().copied())
        .constant("WG", wg)
        .constant("SIZE", size)
        .constant("TEAM_BLOCKS", blocks.div_ceil(teams)))
}

pub fn declaration(ty: GgmlType, form: MatmulForm) -> Result<Declaration, GpuError> {
    tiled(
        Declaration::of::<MatmulParams, MatmulIo>("matmul", "linear/matmul.wgsl"),
        ty,
        TOKENS,
        form,
    )
}

/// Rows of f32 in a buffer: row t starts at `offset + t * stride`.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub stride: u32,
    pub offset: u32,
}

impl<'a> Strided<'a> {
    /// Packed rows of `stride` floats from the start of `buffer`.
    pub fn rows(buffer: &'a wgpu::Buffer, stride: u32) -> Strided<'a> {
        Strided {
            buffer,
            stride,
            offset: 0,
        }
    }

    pub fn at(self, offset: u32) -> Strided<'a> {
        Strided { offset, ..self }
    }
}

/// `y[t][r] = W x[t]` for `n_tokens` rows of x (the first `W.cols` floats of each used),
/// one dispatch per piece of W.
pub fn matmul(
    ctx: &GpuContext,
    cache: &PipelineCache,
    w: &QuantMatrix,
    n_tokens: u32,
    x: Strided<'_>,
    y: Strided<'_>,
) -> Result<Vec<Dispatch>, GpuError> {
    check_strided("matmul", w, x, y)?;
    w.pieces
        .iter()
        .map(|piece| {
            let params = MatmulParams {
                rows: piece.rows,
                units: w.cols / 32,
                row_bytes: w.row_bytes,
                n_tokens,
                x_stride: x.stride,
                y_stride: y.stride,
                x_offset: x.offset,
                y_offset: y.offset + piece.first_row,
                first_slab: 0,
                x_group: 1,
                slabs: 0,
                from_pool: 0,
            };
            let io = MatmulIo {
                weights: &piece.buffer,
                x: x.buffer,
                y: y.buffer,
            };
            let form = ctx.features.matmul.for_weights(w.ty);
            let grid = [
                piece.rows.div_ceil(form.tile_rows()),
                n_tokens.div_ceil(TOKENS),
                1,
            ];
            let kernel = Kernel::Matmul { ty: w.ty, form };
            Dispatch::new(ctx, cache, kernel, &params, &io, grid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::CooperativeScalarType::{F16, F32};

    fn matrices(
        configs: &[(
            u32,
            wgpu::CooperativeScalarType,
            wgpu::CooperativeScalarType,
        )],
    ) -> Vec<wgpu::CooperativeMatrixProperties> {
        configs
            .iter()
            .map(|&(n, ab_type, cr_type)| wgpu::CooperativeMatrixProperties {
                m_size: n,
                n_size: n,
                k_size: n,
                ab_type,
                cr_type,
                saturating_accumulation: false,
            })
            .collect()
    }

    fn limits(storage: u32) -> wgpu::Limits {
        wgpu::Limits {
            max_compute_workgroup_storage_size: storage,
            max_compute_invocations_per_workgroup: 1024,
            max_compute_workgroup_size_x: 1024,
            ..wgpu::Limits::default()
        }
    }

    /// NVIDIA's and RDNA3's 16x16x16 f16 -> f32 wins over 8x8x8; Apple's 8x8 is taken;
    /// f32-only matrices, a missing feature and too little workgroup memory give none.
    #[test]
    fn the_cooperative_form_follows_what_the_adapter_lists() {
        let all = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP;
        let big = limits(48 * 1024);
        let nvidia = matrices(&[(16, F16, F16), (16, F16, F32), (8, F16, F32)]);
        assert_eq!(
            MatmulForm::for_adapter(all, &nvidia, 32, &big),
            Some(MatmulForm::Coop {
                size: 16,
                subgroup: 32
            })
        );
        let apple = matrices(&[(8, F32, F32), (8, F16, F32)]);
        assert_eq!(
            MatmulForm::for_adapter(all, &apple, 32, &limits(32 * 1024)),
            Some(MatmulForm::Coop {
                size: 8,
                subgroup: 32
            })
        );
        assert_eq!(
            MatmulForm::for_adapter(all, &matrices(&[(8, F32, F32)]), 32, &big),
            None
        );
        let no_f16 = all - wgpu::Features::SHADER_F16;
        assert_eq!(MatmulForm::for_adapter(no_f16, &nvidia, 32, &big), None);
        assert_eq!(
            MatmulForm::for_adapter(all, &nvidia, 32, &limits(16 * 1024)),
            None
        );
        // 8 subgroups of 256 would need workgroups of 2048.
        assert_eq!(MatmulForm::for_adapter(all, &nvidia, 256, &big), None);
    }

    /// Cooperative matrices first, then the 8-bit tiles where a GPU's driver runs packed
    /// dot products natively, then f16 tiles on a GPU with f16, else the f32 tiles; a CPU
    /// device keeps the f32 tiles whatever it has; a form without room is passed over.
    #[test]
    fn the_form_follows_the_adapter() {
        if std::env::var(MATMUL_ENV).is_ok() {
            eprintln!("skipping: {MATMUL_ENV} forces the form");
            return;
        }
        let f16 = wgpu::Features::SHADER_F16;
        let none = wgpu::Features::empty();
        let big = limits(48 * 1024);
        let coop = MatmulForm::Coop {
            size: 16,
            subgroup: 32,
        };
        let choose = MatmulForm::choose;
        assert_eq!(choose(Some(coop), true, true, f16, &big), coop);
        assert_eq!(choose(None, true, true, f16, &big), MatmulForm::TiledInt8);
        assert_eq!(choose(None, true, true, none, &big), MatmulForm::TiledInt8);
        assert_eq!(choose(None, true, false, f16, &big), MatmulForm::TiledHalf);
        assert_eq!(choose(None, true, false, none, &big), MatmulForm::Tiled);
        assert_eq!(choose(None, false, true, f16, &big), MatmulForm::Tiled);
        // 16 KiB: room for the f32 tiles only.
        let small = limits(16 * 1024);
        assert_eq!(choose(None, true, true, f16, &small), MatmulForm::Tiled);
        // The 8-bit tiles' fallback for the types they cannot stage.
        assert_eq!(
            MatmulForm::TiledInt8.for_weights(GgmlType::F32),
            MatmulForm::Tiled
        );
        assert_eq!(
            MatmulForm::TiledInt8.for_weights(GgmlType::Q4K),
            MatmulForm::TiledInt8
        );
        assert_eq!(
            MatmulForm::TiledHalf.for_weights(GgmlType::F32),
            MatmulForm::TiledHalf
        );
    }

    /// The f16 tiles fit 24 KiB (16 for the weights, 8 for the inputs), the 8-bit ones 18
    /// (12 and 6) and the cooperative tile 28 KiB at 64-token tiles (27 emulated, without
    /// the zeros).
    #[test]
    fn tile_memory_is_what_the_shaders_declare() {
        assert_eq!(MatmulForm::TiledHalf.workgroup_bytes(TOKENS), 24 * 1024);
        assert_eq!(MatmulForm::Tiled.workgroup_bytes(TOKENS), 16 * 1024);
        assert_eq!(MatmulForm::CoopEmulated.workgroup_bytes(TOKENS), 27_648);
        let coop = MatmulForm::Coop {
            size: 16,
            subgroup: 32,
        };
        assert_eq!(coop.workgroup_bytes(TOKENS), 28_672);
        assert_eq!(MatmulForm::TiledInt8.workgroup_bytes(TOKENS), 18 * 1024);
        assert_eq!(MatmulForm::TiledHalf.tile_rows(), 128);
        assert_eq!(MatmulForm::TiledInt8.tile_rows(), 128);
        assert_eq!(MatmulForm::CoopEmulated.tile_rows(), TILE);
    }
}
