//! Tensors in VRAM: quantized weight matrices kept in their GGUF block format (split on row
//! boundaries when larger than one storage binding), and f32 activation buffers.

use wgpu::util::DeviceExt;

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;

/// Storage bindings must be a multiple of 4 bytes long.
fn padded(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if bytes.len() % 4 == 0 && !bytes.is_empty() {
        bytes.into()
    } else {
        let mut v = bytes.to_vec();
        v.resize(bytes.len().div_ceil(4).max(1) * 4, 0);
        v.into()
    }
}

/// A read-only storage buffer holding `bytes`.
pub fn storage_buffer(ctx: &GpuContext, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    ctx.created.buffer();
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &padded(bytes),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        })
}

/// A read-only storage buffer holding `bytes` (a tensor of the model file), written so that
/// no host copy of it stays behind: in place where the device maps it
/// ([`GpuFeatures::mapped_upload`](crate::runtime::GpuFeatures)), else through
/// [`GpuContext::write_buffer`]'s bounded staging.
pub fn upload_buffer(
    ctx: &GpuContext,
    label: &str,
    bytes: &[u8],
) -> Result<wgpu::Buffer, GpuError> {
    ctx.created.buffer();
    let mapped = ctx.features.mapped_upload;
    let mut usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
    if mapped {
        usage |= wgpu::BufferUsages::MAP_WRITE;
    }
    let size = (bytes.len().div_ceil(4).max(1) * 4) as u64;
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: mapped,
    });
    if mapped {
        {
            let mut view = buffer
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| GpuError::Device(format!("mapping {label} for upload: {e}")))?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
            view.slice(bytes.len()..)
                .copy_from_slice(&[0; 4][..size as usize - bytes.len()]);
        }
        buffer.unmap();
    } else {
        ctx.write_buffer(&buffer, 0, bytes)?;
    }
    Ok(buffer)
}

/// The usage of a storage buffer in host memory: `MAP_READ` is what wgpu-hal places in
/// host-visible, cached system memory on a discrete GPU (`MAP_WRITE` would take the BAR
/// window, which is VRAM).
pub const HOST_STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::MAP_READ)
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A read-only storage buffer holding `bytes` in host memory that the GPU reads over the
/// bus (routed experts beyond the VRAM budget, `runtime::experts`): `MAP_READ` usage puts it
/// in host-cached system memory on Vulkan and a CPU-side heap on DX12 and Metal (it needs
/// `MAPPABLE_PRIMARY_BUFFERS`); written through bounded staging, so the file's map stays
/// the only other copy.
pub fn host_storage_buffer(
    ctx: &GpuContext,
    label: &str,
    bytes: &[u8],
) -> Result<wgpu::Buffer, GpuError> {
    if !ctx.features.host_storage {
        return Err(GpuError::Device(format!(
            "{label}: this adapter cannot bind host memory as storage (no MAPPABLE_PRIMARY_BUFFERS), so every expert must fit in VRAM"
        )));
    }
    ctx.created.buffer();
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (bytes.len().div_ceil(4).max(1) * 4) as u64,
        usage: HOST_STORAGE_USAGE,
        mapped_at_creation: false,
    });
    ctx.write_buffer(&buffer, 0, bytes)?;
    Ok(buffer)
}

/// A zeroed f32 storage buffer of `n` values that kernels write and tests read back.
pub fn f32_buffer(ctx: &GpuContext, label: &str, n: usize) -> wgpu::Buffer {
    ctx.empty_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (4 * n.max(1)) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// A kernel's params struct, bound as read-only storage (see `Dispatch`).
pub fn params_buffer<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    ctx.created.buffer();
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        })
}

/// A mappable buffer of `bytes` for reading results back.
pub fn read_back_buffer(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.created.buffer();
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4).div_ceil(4) * 4,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Waits for the submitted work, maps `buffer` (a [`read_back_buffer`]) and returns its
/// first `bytes` bytes, leaving it unmapped for the next use.
pub fn map_read(ctx: &GpuContext, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
    map_read_after(ctx, buffer, bytes, None)
}

/// [`map_read`] that waits only for `submission` (the one that wrote `buffer`), not for work
/// submitted after it: a pipelined decode reads one step's id while the next step runs.
pub fn map_read_after(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    bytes: u64,
    submission: Option<wgpu::SubmissionIndex>,
) -> Result<Vec<u8>, GpuError> {
    let slice = buffer.slice(..bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
    ctx.wait_for(submission)?;
    rx.recv()
        .map_err(|e| GpuError::Device(format!("read-back never mapped: {e}")))?
        .map_err(|e| GpuError::Device(format!("mapping the read-back: {e}")))?;
    let data = slice
        .get_mapped_range()
        .map_err(|e| GpuError::Device(format!("mapped range: {e}")))?
        .to_vec();
    buffer.unmap();
    Ok(data)
}

/// Copies `n` f32 values out of `buffer` (tests and tools; generation reads only a token id).
pub fn read_f32(ctx: &GpuContext, buffer: &wgpu::Buffer, n: usize) -> Result<Vec<f32>, GpuError> {
    let size = (4 * n) as u64;
    let staging = read_back_buffer(ctx, "read-back", size);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
    ctx.queue.submit([enc.finish()]);
    Ok(bytemuck::pod_collect_to_vec(&map_read(
        ctx, &staging, size,
    )?))
}

/// Rows `first_row..first_row + rows` of a matrix in one buffer.
#[derive(Clone)]
pub struct MatrixPiece {
    pub buffer: wgpu::Buffer,
    pub first_row: u32,
    pub rows: u32,
}

/// A weight matrix of `rows` rows of `cols` elements in its GGUF block format (cloning
/// shares its buffers).
#[derive(Clone)]
pub struct QuantMatrix {
    pub ty: GgmlType,
    pub rows: u32,
    pub cols: u32,
    pub row_bytes: u32,
    pub pieces: Vec<MatrixPiece>,
}

/// A weight's layout: `rows` rows of `cols` elements of `ty` (for an expert tensor, the
/// rows of one expert).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixShape {
    pub ty: GgmlType,
    pub cols: u32,
    pub rows: u32,
}

impl QuantMatrix {
    /// Uploads `bytes` (a GGUF tensor of ggml shape {cols, rows}), split on row boundaries
    /// into pieces of at most `max_piece_bytes` (the adapter's storage binding limit).
    pub fn upload(
        ctx: &GpuContext,
        name: &str,
        shape: MatrixShape,
        bytes: &[u8],
        max_piece_bytes: u64,
    ) -> Result<QuantMatrix, GpuError> {
        Self::upload_split(ctx, name, (shape, 1), bytes, max_piece_bytes, false)
    }

    /// A 3-D expert tensor ({cols, rows_per_expert, n_experts}, `shape` holding one
    /// expert's rows): expert e's rows are `e * rows_per_expert..`; pieces split on expert
    /// boundaries, so each expert's slab sits whole in one buffer.
    pub fn upload_experts(
        ctx: &GpuContext,
        name: &str,
        shape: MatrixShape,
        n_experts: u32,
        bytes: &[u8],
        max_piece_bytes: u64,
    ) -> Result<QuantMatrix, GpuError> {
        let all = experts_shape(name, shape, n_experts)?;
        Self::upload_split(ctx, name, (all, shape.rows), bytes, max_piece_bytes, false)
    }

    /// Splits into pieces that hold whole groups of `granularity` rows.
    /// In host memory the GPU reads over the bus ([`host_storage_buffer`]) when `host`.
    fn upload_split(
        ctx: &GpuContext,
        name: &str,
        (shape, granularity): (MatrixShape, u32),
        bytes: &[u8],
        max_piece_bytes: u64,
        host: bool,
    ) -> Result<QuantMatrix, GpuError> {
        let layout = PieceLayout::of(name, shape, granularity, max_piece_bytes)?;
        layout.check_bytes(name, bytes)?;
        layout.build(shape, |first_row, n| {
            let piece = layout.bytes_of(bytes, first_row, n);
            if host {
                host_storage_buffer(ctx, name, piece)
            } else {
                upload_buffer(ctx, name, piece)
            }
        })
    }

    /// `n_experts` slabs of `shape` in host memory the GPU reads over the bus
    /// ([`host_storage_buffer`]), split on expert boundaries.
    pub fn upload_experts_to_host(
        ctx: &GpuContext,
        name: &str,
        shape: MatrixShape,
        n_experts: u32,
        bytes: &[u8],
        max_piece_bytes: u64,
    ) -> Result<QuantMatrix, GpuError> {
        let all = experts_shape(name, shape, n_experts)?;
        Self::upload_split(ctx, name, (all, shape.rows), bytes, max_piece_bytes, true)
    }

    /// Room for `slots` slabs of `shape` in VRAM, zeroed (an expert pool filled by copies).
    pub fn expert_pool(
        ctx: &GpuContext,
        name: &str,
        shape: MatrixShape,
        slots: u32,
        max_piece_bytes: u64,
    ) -> Result<QuantMatrix, GpuError> {
        let all = experts_shape(name, shape, slots)?;
        let layout = PieceLayout::of(name, all, shape.rows, max_piece_bytes)?;
        layout.build(all, |_, n| {
            Ok(ctx.empty_buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: (n as u64 * layout.row_bytes).div_ceil(4).max(1) * 4,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }))
        })
    }
}

/// `n_experts` slabs of `shape`'s rows as one matrix shape.
fn experts_shape(name: &str, shape: MatrixShape, n_experts: u32) -> Result<MatrixShape, GpuError> {
    let rows = shape
        .rows
        .checked_mul(n_experts)
        .ok_or(GpuError::Shape(format!(
            "{name}: {n_experts} experts of {} rows",
            shape.rows
        )))?;
    Ok(MatrixShape { rows, ..shape })
}

/// How a matrix splits into pieces of whole `granularity`-row groups within one binding.
struct PieceLayout {
    row_bytes: u64,
    rows: u32,
    rows_per_piece: u32,
}

impl PieceLayout {
    fn of(
        name: &str,
        shape: MatrixShape,
        granularity: u32,
        max_piece_bytes: u64,
    ) -> Result<PieceLayout, GpuError> {
        let MatrixShape { ty, cols, rows } = shape;
        let row_bytes =
            ty.row_bytes(cols as u64)
                .filter(|_| cols % 32 == 0)
                .ok_or(GpuError::Shape(format!(
                    "{name}: rows of {cols} {ty} elements are not whole 32-element units"
                )))?;
        let group_bytes = row_bytes * granularity as u64;
        let groups_per_piece = max_piece_bytes / group_bytes;
        if groups_per_piece == 0 {
            return Err(GpuError::Shape(format!(
                "{name}: {granularity} row(s) of {row_bytes} bytes exceed the storage binding limit {max_piece_bytes}"
            )));
        }
        Ok(PieceLayout {
            row_bytes,
            rows,
            rows_per_piece: (groups_per_piece * granularity as u64).min(rows as u64) as u32,
        })
    }

    fn check_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), GpuError> {
        if self.row_bytes * self.rows as u64 != bytes.len() as u64 {
            return Err(GpuError::Shape(format!(
                "{name}: {} rows of {} bytes, but {} bytes given",
                self.rows,
                self.row_bytes,
                bytes.len()
            )));
        }
        Ok(())
    }

    fn bytes_of<'b>(&self, bytes: &'b [u8], first_row: u32, n: u32) -> &'b [u8] {
        let start = first_row as usize * self.row_bytes as usize;
        &bytes[start..start + n as usize * self.row_bytes as usize]
    }

    /// The matrix whose pieces `make(first_row, rows)` creates.
    fn build(
        &self,
        shape: MatrixShape,
        mut make: impl FnMut(u32, u32) -> Result<wgpu::Buffer, GpuError>,
    ) -> Result<QuantMatrix, GpuError> {
        let MatrixShape { ty, cols, rows } = shape;
        let mut pieces = Vec::new();
        let mut first_row = 0;
        while first_row < rows {
            let n = self.rows_per_piece.min(rows - first_row);
            pieces.push(MatrixPiece {
                buffer: make(first_row, n)?,
                first_row,
                rows: n,
            });
            first_row += n;
        }
        Ok(QuantMatrix {
            ty,
            rows,
            cols,
            row_bytes: self.row_bytes as u32,
            pieces,
        })
    }
}
