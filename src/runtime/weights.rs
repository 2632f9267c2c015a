//! The model's weights in VRAM: every matrix uploaded once in its GGUF block format (the
//! matvec and matmul kernels dequantize on the fly), the small per-channel tensors (norms,
//! conv taps, dt bias, A) as f32. A layer's weights are the loader's description of it
//! ([`ModelConfig::layer_tensors`]) loaded through the uploader, so they have its fields.

use crate::error::{Error, GpuError};
use crate::loader::config::{
    AttentionTensors, FfnTensors, LayerTensors, LinearTensors, MixerTensors, ModelConfig,
    MoeTensors, SharedExpertTensors, TensorSource, TensorSpec,
};
use crate::loader::dequant::dequantize;
use crate::loader::gguf::{GgufFile, TensorInfo};
use crate::loader::names;
use crate::model::placement::ExpertSplit;
use crate::model::reference::rope::rope_frequencies;
use crate::runtime::experts::{ExpertTable, ExpertTensor};
use crate::runtime::gpu::GpuContext;
use crate::runtime::tensor::{upload_buffer, MatrixShape, QuantMatrix};

/// Every weight of one layer: matrices and expert tensors in block format, small tensors
/// as f32 buffers (conv taps [conv_channels, conv_kernel]).
pub type LayerWeights = LayerTensors<QuantMatrix, ExpertTensor, wgpu::Buffer>;
pub type MixerWeights = MixerTensors<QuantMatrix, wgpu::Buffer>;
pub type AttentionWeights = AttentionTensors<QuantMatrix, wgpu::Buffer>;
pub type LinearWeights = LinearTensors<QuantMatrix, wgpu::Buffer>;
pub type FfnWeights = FfnTensors<QuantMatrix, ExpertTensor>;
pub type MoeWeights = MoeTensors<QuantMatrix, ExpertTensor>;
pub type SharedExpert = SharedExpertTensors<QuantMatrix>;

pub struct ModelWeights {
    pub token_embd: QuantMatrix,
    /// `None` when the output projection is tied to the embedding table.
    pub output: Option<QuantMatrix>,
    pub output_norm: wgpu::Buffer,
    /// [n_rot / 2] rotary frequencies, mRoPE sections applied.
    pub rope_freqs: wgpu::Buffer,
    pub layers: Vec<LayerWeights>,
    /// Bytes uploaded.
    pub bytes: u64,
}

impl ModelWeights {
    /// The matrix the logits come from.
    pub fn lm_head(&self) -> &QuantMatrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}

/// Upload progress: bytes done and bytes in all.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Reads tensors out of the file and uploads them, reporting bytes as it goes.
struct Uploader<'a, 'p> {
    ctx: &'a GpuContext,
    file: &'a GgufFile,
    max_piece: u64,
    done: u64,
    total: u64,
    progress: Progress<'p>,
    /// Experts of each MoE layer resident in VRAM.
    resident: u32,
    /// The location table of the layer being loaded, shared by its expert tensors.
    table: Option<ExpertTable>,
}

impl<'a> Uploader<'a, '_> {
    fn bytes(&self, name: &str) -> Result<(&'a TensorInfo, &'a [u8]), Error> {
        let info = self
            .file
            .tensor(name)
            .ok_or_else(|| Error::InvalidArgument(format!("tensor '{name}' missing")))?;
        let bytes = self.file.tensor_data(name).ok_or_else(|| {
            Error::InvalidArgument(format!("tensor '{name}': data outside the file"))
        })?;
        Ok((info, bytes))
    }

    fn advance(&mut self, n: usize) {
        self.done += n as u64;
        (self.progress)(self.done, self.total);
    }

    /// A 2-D (or 1-D, as one row) weight in its block format.
    fn upload_matrix(&mut self, name: &str) -> Result<QuantMatrix, Error> {
        let (info, bytes) = self.bytes(name)?;
        let shape = MatrixShape {
            ty: info.ggml_type,
            cols: dim(name, info.dims[0])?,
            rows: dim(name, info.dims[1..].iter().product::<u64>())?,
        };
        let m = QuantMatrix::upload(self.ctx, name, shape, bytes, self.max_piece)?;
        self.advance(bytes.len());
        Ok(m)
    }

    /// A 3-D expert tensor {cols, rows_per_expert, n_experts}: the first `resident` experts
    /// in a VRAM pool and, when that is not all of them, every expert in host memory.
    fn upload_experts(&mut self, name: &str) -> Result<ExpertTensor, Error> {
        let (info, bytes) = self.bytes(name)?;
        let [cols, rows, n] = info.dims[..] else {
            return Err(Error::InvalidArgument(format!(
                "tensor '{name}': expert tensors have 3 dimensions, not {:?}",
                info.dims
            )));
        };
        let shape = MatrixShape {
            ty: info.ggml_type,
            cols: dim(name, cols)?,
            rows: dim(name, rows)?,
        };
        let n = dim(name, n)?;
        let table = match &self.table {
            Some(t) if t.n_expert == n => t.clone(),
            _ => {
                let t = ExpertTable::new(self.ctx, n, self.resident.min(n))?;
                self.table = Some(t.clone());
                t
            }
        };
        let resident = self.resident.min(n);
        let tensor = if resident == n {
            let w = QuantMatrix::upload_experts(self.ctx, name, shape, n, bytes, self.max_piece)?;
            ExpertTensor::with_table(w, shape.rows, table)
        } else {
            let slots: Vec<u32> = (0..resident).collect();
            let placed = (table, slots.as_slice());
            ExpertTensor::split(self.ctx, name, (shape, n), bytes, self.max_piece, placed)?
        };
        self.advance(bytes.len());
        Ok(tensor)
    }

    /// A small tensor dequantized to f32 (norms, conv taps: whatever type the file chose).
    fn upload_vector(&mut self, name: &str) -> Result<wgpu::Buffer, Error> {
        let (info, bytes) = self.bytes(name)?;
        let values = dequantize(info.ggml_type, bytes, info.n_elements() as usize)
            .map_err(|e| Error::InvalidArgument(format!("tensor '{name}': {e}")))?;
        let buffer = upload_buffer(self.ctx, name, bytemuck::cast_slice(&values))?;
        self.advance(bytes.len());
        Ok(buffer)
    }
}

/// A layer's tensors, read by the names of their specs (the file was checked against them).
impl TensorSource for Uploader<'_, '_> {
    type Matrix = QuantMatrix;
    type Experts = ExpertTensor;
    type Vector = wgpu::Buffer;
    type Error = Error;

    fn matrix(&mut self, spec: &TensorSpec) -> Result<QuantMatrix, Error> {
        self.upload_matrix(&spec.name)
    }

    fn experts(&mut self, spec: &TensorSpec) -> Result<ExpertTensor, Error> {
        self.upload_experts(&spec.name)
    }

    fn vector(&mut self, spec: &TensorSpec) -> Result<wgpu::Buffer, Error> {
        self.upload_vector(&spec.name)
    }
}

fn dim(name: &str, d: u64) -> Result<u32, Error> {
    u32::try_from(d)
        .map_err(|_| Error::InvalidArgument(format!("tensor '{name}': dimension {d} exceeds 2^32")))
}

/// The largest piece one storage binding (and one buffer) can hold.
pub fn max_piece_bytes(ctx: &GpuContext) -> u64 {
    ctx.limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size)
}

/// Uploads every main-pass tensor of `file` (validated against `config`), the routed
/// experts as `split` places them, calling `progress(done, total)` in bytes. Running out of
/// device memory is an error, not a panic.
pub fn upload(
    ctx: &GpuContext,
    file: &GgufFile,
    config: &ModelConfig,
    split: &ExpertSplit,
    progress: Progress<'_>,
) -> Result<ModelWeights, Error> {
    let total = config
        .tensor_specs()
        .iter()
        .filter_map(|s| file.tensor(&s.name))
        .map(|t| t.n_bytes)
        .sum();
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let mut up = Uploader {
        ctx,
        file,
        max_piece: max_piece_bytes(ctx),
        done: 0,
        total,
        progress,
        resident: split.resident,
        table: None,
    };
    let weights = upload_all(&mut up, config).and_then(|w| {
        ctx.finish_writes()?;
        Ok(w)
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(GpuError::OutOfMemory(format!(
            "uploading {:.2} GiB of weights: {e}",
            total as f64 / (1u64 << 30) as f64
        ))
        .into());
    }
    weights
}

fn upload_all(up: &mut Uploader<'_, '_>, config: &ModelConfig) -> Result<ModelWeights, Error> {
    let token_embd = up.upload_matrix(names::TOKEN_EMBD)?;
    let output = if config.tied_embeddings {
        None
    } else {
        Some(up.upload_matrix(names::OUTPUT)?)
    };
    let output_norm = up.upload_vector(names::OUTPUT_NORM)?;
    let layers = (0..config.layers.len())
        .map(|i| {
            up.table = None;
            config.layer_tensors(i)?.load(up)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let a = &config.attention;
    let freqs = rope_frequencies(a.n_rot as usize, a.rope_base, a.rope_sections);
    Ok(ModelWeights {
        token_embd,
        output,
        output_norm,
        rope_freqs: upload_buffer(up.ctx, "rope_freqs", bytemuck::cast_slice(&freqs))?,
        layers,
        bytes: up.done,
    })
}
