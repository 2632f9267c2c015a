//! The model's weights in VRAM: every matrix uploaded once in its GGUF block format (the
//! matvec and matmul kernels dequantize on the fly), the small per-channel tensors (norms,
//! conv taps, dt bias, A) as f32.

use crate::error::{Error, GpuError};
use crate::loader::config::{ExpertStorage, FfnConfig, LayerKind, ModelConfig};
use crate::loader::dequant::dequantize;
use crate::loader::gguf::GgufFile;
use crate::loader::names::{self, blk, layer as t};
use crate::model::reference::rope::rope_frequencies;
use crate::runtime::gpu::GpuContext;
use crate::runtime::tensor::{upload_buffer, QuantMatrix};

pub struct AttentionWeights {
    pub q: QuantMatrix,
    pub k: QuantMatrix,
    pub v: QuantMatrix,
    pub o: QuantMatrix,
    pub q_norm: wgpu::Buffer,
    pub k_norm: wgpu::Buffer,
}

pub struct LinearWeights {
    pub qkv: QuantMatrix,
    pub gate: QuantMatrix,
    pub beta: QuantMatrix,
    pub alpha: QuantMatrix,
    pub out: QuantMatrix,
    /// [conv_channels, conv_kernel] f32.
    pub conv: wgpu::Buffer,
    pub dt_bias: wgpu::Buffer,
    pub a: wgpu::Buffer,
    pub norm: wgpu::Buffer,
}

pub enum MixerWeights {
    Attention(AttentionWeights),
    Linear(LinearWeights),
}

/// The routed experts' gate and up projections, as the file stores them.
pub enum ExpertGateUp {
    /// One tensor, each expert's slab `[gate rows | up rows]`.
    Fused(QuantMatrix),
    Separate {
        gate: QuantMatrix,
        up: QuantMatrix,
    },
}

pub struct SharedExpert {
    /// One row: the logit of the shared expert's sigmoid gate.
    pub gate_inp: QuantMatrix,
    pub gate: QuantMatrix,
    pub up: QuantMatrix,
    pub down: QuantMatrix,
}

pub enum FfnWeights {
    Dense {
        gate: QuantMatrix,
        up: QuantMatrix,
        down: QuantMatrix,
    },
    Moe(MoeWeights),
}

pub struct MoeWeights {
    pub router: QuantMatrix,
    pub gate_up: ExpertGateUp,
    pub down: QuantMatrix,
    pub shared: Option<SharedExpert>,
}

pub struct LayerWeights {
    pub attn_norm: wgpu::Buffer,
    pub mixer: MixerWeights,
    pub ffn_norm: wgpu::Buffer,
    pub ffn: FfnWeights,
}

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
}

impl Uploader<'_, '_> {
    fn bytes(&self, name: &str) -> Result<(&crate::loader::gguf::TensorInfo, &[u8]), Error> {
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
    fn matrix(&mut self, name: &str) -> Result<QuantMatrix, Error> {
        let (info, bytes) = self.bytes(name)?;
        let cols = info.dims[0];
        let rows = info.dims[1..].iter().product::<u64>();
        let m = QuantMatrix::upload(
            self.ctx,
            name,
            info.ggml_type,
            dim(name, cols)?,
            dim(name, rows)?,
            bytes,
            self.max_piece,
        )?;
        self.advance(bytes.len());
        Ok(m)
    }

    /// A 3-D expert tensor {cols, rows_per_expert, n_experts}.
    fn experts(&mut self, name: &str) -> Result<QuantMatrix, Error> {
        let (info, bytes) = self.bytes(name)?;
        let [cols, rows, n] = info.dims[..] else {
            return Err(Error::InvalidArgument(format!(
                "tensor '{name}': expert tensors have 3 dimensions, not {:?}",
                info.dims
            )));
        };
        let m = QuantMatrix::upload_experts(
            self.ctx,
            name,
            info.ggml_type,
            dim(name, cols)?,
            dim(name, rows)?,
            dim(name, n)?,
            bytes,
            self.max_piece,
        )?;
        self.advance(bytes.len());
        Ok(m)
    }

    /// A small tensor dequantized to f32 (norms, conv taps: whatever type the file chose).
    fn vector(&mut self, name: &str) -> Result<wgpu::Buffer, Error> {
        let (info, bytes) = self.bytes(name)?;
        let values = dequantize(info.ggml_type, bytes, info.n_elements() as usize)
            .map_err(|e| Error::InvalidArgument(format!("tensor '{name}': {e}")))?;
        let buffer = upload_buffer(self.ctx, name, bytemuck::cast_slice(&values))?;
        self.advance(bytes.len());
        Ok(buffer)
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

/// Uploads every main-pass tensor of `file` (validated against `config`), calling
/// `progress(done, total)` in bytes. Running out of device memory is an error, not a panic.
pub fn upload(
    ctx: &GpuContext,
    file: &GgufFile,
    config: &ModelConfig,
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
    let token_embd = up.matrix(names::TOKEN_EMBD)?;
    let output = if config.tied_embeddings {
        None
    } else {
        Some(up.matrix(names::OUTPUT)?)
    };
    let output_norm = up.vector(names::OUTPUT_NORM)?;
    let layers = (0..config.layers.len())
        .map(|i| upload_layer(up, config, i))
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

fn upload_layer(
    up: &mut Uploader<'_, '_>,
    config: &ModelConfig,
    i: usize,
) -> Result<LayerWeights, Error> {
    let attn_norm = up.vector(&blk(i, t::ATTN_NORM))?;
    let mixer = match config.layers[i] {
        LayerKind::Attention => MixerWeights::Attention(AttentionWeights {
            q: up.matrix(&blk(i, t::ATTN_Q))?,
            k: up.matrix(&blk(i, t::ATTN_K))?,
            v: up.matrix(&blk(i, t::ATTN_V))?,
            o: up.matrix(&blk(i, t::ATTN_OUTPUT))?,
            q_norm: up.vector(&blk(i, t::ATTN_Q_NORM))?,
            k_norm: up.vector(&blk(i, t::ATTN_K_NORM))?,
        }),
        LayerKind::Linear => MixerWeights::Linear(LinearWeights {
            qkv: up.matrix(&blk(i, t::ATTN_QKV))?,
            gate: up.matrix(&blk(i, t::ATTN_GATE))?,
            beta: up.matrix(&blk(i, t::SSM_BETA))?,
            alpha: up.matrix(&blk(i, t::SSM_ALPHA))?,
            out: up.matrix(&blk(i, t::SSM_OUT))?,
            conv: up.vector(&blk(i, t::SSM_CONV1D))?,
            dt_bias: up.vector(&blk(i, t::SSM_DT_BIAS))?,
            a: up.vector(&blk(i, t::SSM_A))?,
            norm: up.vector(&blk(i, t::SSM_NORM))?,
        }),
    };
    let ffn_norm = up.vector(&blk(
        i,
        if config.arch.is_hybrid() {
            t::POST_ATTENTION_NORM
        } else {
            t::FFN_NORM
        },
    ))?;
    let ffn = match &config.ffn {
        FfnConfig::Dense { .. } => FfnWeights::Dense {
            gate: up.matrix(&blk(i, t::FFN_GATE))?,
            up: up.matrix(&blk(i, t::FFN_UP))?,
            down: up.matrix(&blk(i, t::FFN_DOWN))?,
        },
        FfnConfig::Moe(m) => FfnWeights::Moe(MoeWeights {
            router: up.matrix(&blk(i, t::FFN_GATE_INP))?,
            gate_up: match m.storage {
                ExpertStorage::Fused => {
                    ExpertGateUp::Fused(up.experts(&blk(i, t::FFN_GATE_UP_EXPS))?)
                }
                ExpertStorage::Separate => ExpertGateUp::Separate {
                    gate: up.experts(&blk(i, t::FFN_GATE_EXPS))?,
                    up: up.experts(&blk(i, t::FFN_UP_EXPS))?,
                },
            },
            down: up.experts(&blk(i, t::FFN_DOWN_EXPS))?,
            shared: match m.shared_ffn {
                Some(_) => Some(SharedExpert {
                    gate_inp: up.matrix(&blk(i, t::FFN_GATE_INP_SHEXP))?,
                    gate: up.matrix(&blk(i, t::FFN_GATE_SHEXP))?,
                    up: up.matrix(&blk(i, t::FFN_UP_SHEXP))?,
                    down: up.matrix(&blk(i, t::FFN_DOWN_SHEXP))?,
                }),
                None => None,
            },
        }),
    };
    Ok(LayerWeights {
        attn_norm,
        mixer,
        ffn_norm,
        ffn,
    })
}
