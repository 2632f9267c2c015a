//! `shaders/linear/matvec.wgsl`: `y = W x` for one token, for up to four matrices reading
//! the same input, with the input's RMSNorm and the residual add folded in where asked.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::{check_vec4_input, row_reader};
use crate::runtime::ops::{Dispatch, Record};
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

/// Invocations per matvec workgroup.
pub const WG: u32 = 64;
/// Rows per matvec workgroup on a CPU device (each gets WG / ROWS invocations): each
/// workgroup costs a switch there, so few long ones.
pub const ROWS: u32 = 16;
/// The rows per workgroup the kernel is built for (WG / rows invocations per row).
pub const ROW_CHOICES: [u32; 5] = [1, 2, 4, 8, 16];
/// Workgroups a matvec launches at least on a GPU, where its rows allow: several for each
/// SM of a large GPU (132 on an H200), so the loads of many rows are in flight at once.
pub const MIN_GRID: u32 = 512;

/// Rows per workgroup for `slots` matvecs of `rows` rows: [`ROWS`] on a CPU device
/// (`min_grid` None); else the most rows (of [`ROW_CHOICES`]) that still launch `min_grid`
/// workgroups, down to one row per workgroup with all its lanes along the row.
pub fn rows_per_workgroup(min_grid: Option<u32>, rows: u32, slots: u32) -> u32 {
    let Some(min_grid) = min_grid else {
        return ROWS;
    };
    let fills = |r: u32| rows.div_ceil(r) as u64 * slots as u64 >= min_grid as u64;
    ROW_CHOICES
        .iter()
        .rev()
        .copied()
        .find(|&r| fills(r))
        .unwrap_or(1)
}

/// Heads a folded gated head norm can scale (the kernel's per-head scale array).
pub const MAX_GATED_HEADS: u32 = 128;

/// Matrices one matvec dispatch reads (each its own weight binding and output binding).
pub const SEGMENTS: usize = 4;
/// The suffix of segment i's weight reader and bindings (`rows_dot_0`, `weights_0`, `y_0`).
pub const SEGMENT_SUFFIXES: [&str; SEGMENTS] = ["_0", "_1", "_2", "_3"];

/// `shaders/linear/matvec.wgsl`'s `Segment`: one matrix (or piece) of a fused matvec.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable, PartialEq)]
pub struct MatvecSegment {
    /// The segment's first workgroup: segments start on workgroup boundaries.
    pub first_wg: u32,
    pub rows: u32,
    pub row_bytes: u32,
    /// Byte offset of row 0 in its weight binding.
    pub weight_offset: u32,
    pub y_offset: u32,
    pub _pad: [u32; 3],
}

kernel_params! {
    /// `shaders/linear/matvec.wgsl`'s `Params`.
    pub struct MatvecParams {
        /// 32-element units per row (cols / 32).
        pub units: u32,
        pub x_offset: u32,
        /// The folded RMSNorm's epsilon (unused without NORM).
        pub eps: f32,
        pub n_segments: u32,
        pub segments: [MatvecSegment; SEGMENTS],
        /// [`NormFold::GatedHeads`]: the heads' length and count.
        pub head_dim: u32,
        pub n_heads: u32,
        pub _pad: [u32; 2],
    }
}

kernel_io! {
    /// The buffers of one dispatch of a [`Matvec`]: unused segments bind segment 0's.
    pub struct MatvecIo {
        weights_0: Read "[rows_0, row_bytes_0] GGUF blocks as u32 words",
        weights_1: Read "[rows_1, row_bytes_1] GGUF blocks as u32 words",
        weights_2: Read "[rows_2, row_bytes_2] GGUF blocks as u32 words",
        weights_3: Read "[rows_3, row_bytes_3] GGUF blocks as u32 words",
        x: Read "[cols] f32, read as vec4",
        norm_w: Read "[cols] f32 (or [head_dim] for gated heads): the folded norm's weight (x when there is none)",
        z: Read "[cols] f32: the output gate of gated heads (x otherwise)",
        y_0: ReadWrite "[rows_0] f32",
        y_1: ReadWrite "[rows_1] f32",
        y_2: ReadWrite "[rows_2] f32",
        y_3: ReadWrite "[rows_3] f32",
    }
}

/// The norm a matvec folds into its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NormFold {
    None = 0,
    /// `x / rms(x) * w`: a block's input norm.
    Row = 1,
    /// `x_h / rms(x_h) * w * silu(z)` per head h: the Gated DeltaNet output norm.
    GatedHeads = 2,
}

/// What one matvec variant computes: the type of each segment's weights, rows per
/// workgroup, the norm it folds into x and whether it adds into y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatvecForm {
    pub types: [GgmlType; SEGMENTS],
    pub rows: u32,
    pub norm: NormFold,
    pub add: bool,
}

impl MatvecForm {
    /// One matrix of type `ty`, plain.
    pub fn single(ty: GgmlType, rows: u32) -> MatvecForm {
        MatvecForm {
            types: [ty; SEGMENTS],
            rows,
            norm: NormFold::None,
            add: false,
        }
    }
}

/// The matvec in `form`.
pub fn declaration(form: MatvecForm) -> Result<Declaration, GpuError> {
    check_rows(form.rows)?;
    let mut d = Declaration::of::<MatvecParams, MatvecIo>("matvec", "linear/matvec.wgsl")
        .include(["linear/row_norm.wgsl"]);
    for (suffix, ty) in SEGMENT_SUFFIXES.into_iter().zip(form.types) {
        d = d.namespace(suffix, row_reader(ty)?);
    }
    Ok(d.constant("WG", WG)
        .constant("ROWS", form.rows)
        .constant("SEGMENTS", SEGMENTS as u32)
        .constant("MAX_HEADS", MAX_GATED_HEADS)
        .constant("NORM", form.norm as u32)
        .constant("ADD", form.add.into()))
}

/// The lanes of a row add their partials in a tree, so rows divide WG in powers of two.
pub(crate) fn check_rows(rows: u32) -> Result<(), GpuError> {
    if rows == 0 || !rows.is_power_of_two() || rows > WG {
        return Err(GpuError::Shape(format!(
            "matvec: {rows} rows per workgroup (a power of two up to {WG})"
        )));
    }
    Ok(())
}

/// An RMSNorm folded into the matvec: x is read as `x / rms(x) * w`.
#[derive(Clone, Copy)]
pub struct RowNorm<'a> {
    pub w: &'a wgpu::Buffer,
    pub eps: f32,
}

/// The Gated DeltaNet output norm folded into the matvec: head h of x (`head_dim` floats)
/// is read as `x_h / rms(x_h) * w * silu(z_h)`.
#[derive(Clone, Copy)]
pub struct GatedHeadNorm<'a> {
    pub w: &'a wgpu::Buffer,
    pub z: &'a wgpu::Buffer,
    pub head_dim: u32,
    pub eps: f32,
}

/// Which norm, if any, the input is read through.
#[derive(Clone, Copy)]
pub enum InputNorm<'a> {
    Row(RowNorm<'a>),
    GatedHeads(GatedHeadNorm<'a>),
}

/// The one input row every matrix of a [`Matvec`] multiplies.
#[derive(Clone, Copy)]
pub struct MatvecInput<'a> {
    pub x: &'a wgpu::Buffer,
    /// In floats, a multiple of 4.
    pub x_offset: u32,
    pub norm: Option<InputNorm<'a>>,
}

impl<'a> MatvecInput<'a> {
    pub fn plain(x: &'a wgpu::Buffer, x_offset: u32) -> MatvecInput<'a> {
        MatvecInput {
            x,
            x_offset,
            norm: None,
        }
    }
}

/// One matrix of a [`Matvec`] and where its rows go: `y[y_offset..] (+)= W x`.
#[derive(Clone, Copy)]
pub struct Projection<'a> {
    pub w: &'a QuantMatrix,
    pub y: &'a wgpu::Buffer,
    pub y_offset: u32,
}

/// One segment before it is placed in a dispatch.
struct Piece<'a> {
    ty: GgmlType,
    rows: u32,
    row_bytes: u32,
    weights: &'a wgpu::Buffer,
    y: &'a wgpu::Buffer,
    y_offset: u32,
}

/// `y_i[..] (+)= W_i x` for matrices that read the same row, [`SEGMENTS`] matrices (or
/// pieces of a split one) per dispatch.
pub struct Matvec {
    pieces: Vec<Dispatch>,
}

impl Matvec {
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        input: MatvecInput<'_>,
        outputs: &[Projection<'_>],
        add: bool,
    ) -> Result<Matvec, GpuError> {
        check_vec4_input("matvec", input.x_offset, 0)?;
        let Some(cols) = outputs.first().map(|p| p.w.cols) else {
            return Err(GpuError::Shape("matvec of no matrices".into()));
        };
        if let Some(p) = outputs.iter().find(|p| p.w.cols != cols) {
            return Err(GpuError::Shape(format!(
                "matvec: matrices of {cols} and {} columns read one input",
                p.w.cols
            )));
        }
        if let Some(InputNorm::GatedHeads(n)) = input.norm {
            let heads = cols.checked_div(n.head_dim).unwrap_or(0);
            if n.head_dim % 4 != 0 || heads * n.head_dim != cols || heads > MAX_GATED_HEADS {
                return Err(GpuError::Shape(format!(
                    "matvec: {cols} columns as gated heads of {} (a multiple of 4 dividing them, at most {MAX_GATED_HEADS} heads)",
                    n.head_dim
                )));
            }
        }
        let pieces: Vec<Piece<'_>> = outputs
            .iter()
            .flat_map(|p| {
                p.w.pieces.iter().map(|piece| Piece {
                    ty: p.w.ty,
                    rows: piece.rows,
                    row_bytes: p.w.row_bytes,
                    weights: &piece.buffer,
                    y: p.y,
                    y_offset: p.y_offset + piece.first_row,
                })
            })
            .collect();
        let pieces = pieces
            .chunks(SEGMENTS)
            .map(|group| dispatch(ctx, cache, input, group, cols, add))
            .collect::<Result<_, _>>()?;
        Ok(Matvec { pieces })
    }

    /// `y[y_offset..] = W x[x_offset..]`: one matrix, no norm.
    pub fn single(
        ctx: &GpuContext,
        cache: &PipelineCache,
        w: &QuantMatrix,
        x: &wgpu::Buffer,
        x_offset: u32,
        y: &wgpu::Buffer,
        y_offset: u32,
    ) -> Result<Matvec, GpuError> {
        let out = Projection { w, y, y_offset };
        Self::new(ctx, cache, MatvecInput::plain(x, x_offset), &[out], false)
    }

    pub fn dispatch_count(&self) -> usize {
        self.pieces.len()
    }

    pub fn pieces(&self) -> &[Dispatch] {
        &self.pieces
    }

    /// The workgroups of the smallest dispatch.
    pub fn min_workgroups(&self) -> Option<u64> {
        self.pieces.iter().map(Dispatch::workgroups).min()
    }

    pub fn bind_direct(&mut self, ctx: &GpuContext) -> Result<(), GpuError> {
        self.pieces.iter_mut().try_for_each(|d| d.bind_direct(ctx))
    }

    /// The dispatches, in recording order.
    pub fn dispatches(&self) -> impl Iterator<Item = &Dispatch> {
        self.pieces.iter()
    }

    pub fn encode<R: Record>(&self, pass: &mut R) {
        for d in &self.pieces {
            d.encode(pass);
        }
    }
}

/// One dispatch over up to [`SEGMENTS`] pieces.
fn dispatch(
    ctx: &GpuContext,
    cache: &PipelineCache,
    input: MatvecInput<'_>,
    group: &[Piece<'_>],
    cols: u32,
    add: bool,
) -> Result<Dispatch, GpuError> {
    let total: u32 = group.iter().map(|p| p.rows).sum();
    let (norm, norm_w, z, head_dim) = match input.norm {
        None => (NormFold::None, input.x, input.x, 0),
        Some(InputNorm::Row(n)) => (NormFold::Row, n.w, input.x, 0),
        Some(InputNorm::GatedHeads(n)) => (NormFold::GatedHeads, n.w, n.z, n.head_dim),
    };
    let rows = rows_per_workgroup(ctx.features.matvec_min_grid, total, 1);
    let first = &group[0];
    let mut types = [first.ty; SEGMENTS];
    let mut segments = [MatvecSegment::default(); SEGMENTS];
    let mut weights = [first.weights; SEGMENTS];
    let mut ys = [first.y; SEGMENTS];
    let mut wg = 0;
    for (i, p) in group.iter().enumerate() {
        types[i] = p.ty;
        weights[i] = p.weights;
        ys[i] = p.y;
        segments[i] = MatvecSegment {
            first_wg: wg,
            rows: p.rows,
            row_bytes: p.row_bytes,
            weight_offset: 0,
            y_offset: p.y_offset,
            _pad: [0; 3],
        };
        wg += p.rows.div_ceil(rows);
    }
    let params = MatvecParams {
        units: cols / 32,
        x_offset: input.x_offset,
        eps: match input.norm {
            None => 0.0,
            Some(InputNorm::Row(n)) => n.eps,
            Some(InputNorm::GatedHeads(n)) => n.eps,
        },
        n_segments: group.len() as u32,
        segments,
        head_dim: head_dim.max(1),
        n_heads: cols / head_dim.max(1),
        _pad: [0; 2],
    };
    let io = MatvecIo {
        weights_0: weights[0],
        weights_1: weights[1],
        weights_2: weights[2],
        weights_3: weights[3],
        x: input.x,
        norm_w,
        z,
        y_0: ys[0],
        y_1: ys[1],
        y_2: ys[2],
        y_3: ys[3],
    };
    let form = MatvecForm {
        types,
        rows,
        norm,
        add,
    };
    Dispatch::line(ctx, cache, Kernel::Matvec(form), &params, &io, wg)
}
