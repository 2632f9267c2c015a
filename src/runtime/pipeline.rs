//! Shader assembly and the pipeline cache.
//!
//! A kernel's WGSL is its own file plus the shared pieces it needs from `shaders/common/`
//! and, for matrix kernels, the block decoder of the weight type from `shaders/linear/quant/`;
//! [`assemble`] is the one place they are joined. Pipelines are created once per (kernel,
//! variant) and shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuFeatures;

macro_rules! shader_files {
    ($($path:literal),* $(,)?) => {
        /// Every WGSL file of the crate, by its path under `shaders/`.
        pub const SHADER_FILES: &[(&str, &str)] = &[
            $(($path, include_str!(concat!("../../shaders/", $path)))),*
        ];
    };
}

shader_files!(
    "common/bytes.wgsl",
    "common/reduce_shared.wgsl",
    "common/reduce_subgroup.wgsl",
    "linear/matvec.wgsl",
    "linear/unit_dot.wgsl",
    "linear/dot/f32.wgsl",
    "linear/dot/f16.wgsl",
    "linear/dot/q8_0.wgsl",
    "linear/dot/q4_k.wgsl",
    "linear/dot/q6_k.wgsl",
    "linear/stage/generic.wgsl",
    "linear/stage/f32.wgsl",
    "linear/stage/f16.wgsl",
    "linear/stage/q8_0.wgsl",
    "linear/stage/q4_k.wgsl",
    "linear/stage/q6_k.wgsl",
    "linear/embed.wgsl",
    "linear/matmul.wgsl",
    "linear/quant/f32.wgsl",
    "linear/quant/f16.wgsl",
    "linear/quant/bf16.wgsl",
    "linear/quant/q4_0.wgsl",
    "linear/quant/q4_1.wgsl",
    "linear/quant/q5_0.wgsl",
    "linear/quant/q5_1.wgsl",
    "linear/quant/q8_0.wgsl",
    "linear/quant/q2_k.wgsl",
    "linear/quant/q3_k.wgsl",
    "linear/quant/k4_scales.wgsl",
    "linear/quant/q4_k.wgsl",
    "linear/quant/q5_k.wgsl",
    "linear/quant/q6_k.wgsl",
    "linear/quant/q8_k.wgsl",
    "linear/quant/iq4_nl.wgsl",
    "linear/quant/iq4_xs.wgsl",
    "linear/quant/mxfp4.wgsl",
    "norm/row_norms.wgsl",
    "gdn/causal_conv1d.wgsl",
    "gdn/delta_rule.wgsl",
    "attention/kv_f32.wgsl",
    "attention/kv_f16.wgsl",
    "attention/qk_norm_rope.wgsl",
    "attention/flash_attention.wgsl",
    "attention/flash_prefill.wgsl",
    "moe/router.wgsl",
    "moe/combine.wgsl",
    "sample/argmax.wgsl",
    "sample/top_k.wgsl",
    "sample/penalty.wgsl",
    "moe/group.wgsl",
);

fn file(path: &str) -> &'static str {
    SHADER_FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, src)| *src)
        .unwrap_or_else(|| panic!("shader file {path} is not registered in SHADER_FILES"))
}

/// The block decoder of a weight type (`linear/quant/<type>.wgsl`), after any helper it needs.
/// The matvec's `unit_dot` for `ty`: a word-wise dot for the common quantizations, else
/// the generic one over the decoder's `unit_values`.
fn dot_file(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => "linear/dot/f32.wgsl",
        GgmlType::F16 => "linear/dot/f16.wgsl",
        GgmlType::Q8_0 => "linear/dot/q8_0.wgsl",
        GgmlType::Q4K => "linear/dot/q4_k.wgsl",
        GgmlType::Q6K => "linear/dot/q6_k.wgsl",
        _ => "linear/unit_dot.wgsl",
    }
}

/// The matmul's `stage_unit` for `ty`, the same split as [`dot_file`].
fn stage_file(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => "linear/stage/f32.wgsl",
        GgmlType::F16 => "linear/stage/f16.wgsl",
        GgmlType::Q8_0 => "linear/stage/q8_0.wgsl",
        GgmlType::Q4K => "linear/stage/q4_k.wgsl",
        GgmlType::Q6K => "linear/stage/q6_k.wgsl",
        _ => "linear/stage/generic.wgsl",
    }
}

fn quant_files(ty: GgmlType) -> Result<Vec<&'static str>, GpuError> {
    let decoder = match ty {
        GgmlType::F32 => "linear/quant/f32.wgsl",
        GgmlType::F16 => "linear/quant/f16.wgsl",
        GgmlType::Bf16 => "linear/quant/bf16.wgsl",
        GgmlType::Q4_0 => "linear/quant/q4_0.wgsl",
        GgmlType::Q4_1 => "linear/quant/q4_1.wgsl",
        GgmlType::Q5_0 => "linear/quant/q5_0.wgsl",
        GgmlType::Q5_1 => "linear/quant/q5_1.wgsl",
        GgmlType::Q8_0 => "linear/quant/q8_0.wgsl",
        GgmlType::Q2K => "linear/quant/q2_k.wgsl",
        GgmlType::Q3K => "linear/quant/q3_k.wgsl",
        GgmlType::Q4K => "linear/quant/q4_k.wgsl",
        GgmlType::Q5K => "linear/quant/q5_k.wgsl",
        GgmlType::Q6K => "linear/quant/q6_k.wgsl",
        GgmlType::Q8K => "linear/quant/q8_k.wgsl",
        GgmlType::Iq4Nl => "linear/quant/iq4_nl.wgsl",
        GgmlType::Iq4Xs => "linear/quant/iq4_xs.wgsl",
        GgmlType::Mxfp4 => "linear/quant/mxfp4.wgsl",
        other => return Err(GpuError::UnsupportedType(other)),
    };
    Ok(match ty {
        GgmlType::Q4K | GgmlType::Q5K => vec!["linear/quant/k4_scales.wgsl", decoder],
        _ => vec![decoder],
    })
}

/// A kernel and the variant of it to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `linear/matvec.wgsl` over weights of the given type.
    Matvec(GgmlType),
    /// `linear/matvec.wgsl`, entry `matvec_experts`: the routed experts' slabs.
    MatvecExperts(GgmlType),
    /// The same entry for many slots (a prompt chunk's): more rows per workgroup.
    MatvecSlots(GgmlType),
    /// `linear/embed.wgsl`: rows of a table of the given type.
    Embed(GgmlType),
    /// `linear/matmul.wgsl`: a block of tokens times weights of the given type.
    Matmul(GgmlType),
    /// `moe/router.wgsl`.
    MoeRoute,
    /// `moe/group.wgsl`: a prefill chunk's slots grouped by expert.
    MoeGroup,
    /// `linear/matmul.wgsl`, entry `matmul_experts`: the grouped slots' expert matmul.
    MatmulExperts(GgmlType),
    /// `moe/combine.wgsl`, entry `swiglu`.
    Swiglu,
    /// `moe/combine.wgsl`, entry `moe_combine`.
    MoeCombine,
    /// `sample/argmax.wgsl`, entry `argmax_partial`.
    ArgmaxPartial,
    /// `sample/argmax.wgsl`, entry `argmax_final`.
    ArgmaxFinal,
    /// `sample/top_k.wgsl`, entry `top_k_partial`.
    TopKPartial,
    /// `sample/top_k.wgsl`, entry `top_k_sample`.
    TopKSample,
    /// `sample/penalty.wgsl`.
    RepetitionPenalty,
    /// `norm/row_norms.wgsl`, entry `rms_norm`.
    RmsNorm,
    /// `norm/row_norms.wgsl`, entry `add_rms_norm`.
    AddRmsNorm,
    /// `norm/row_norms.wgsl`, entry `gated_rms_norm`.
    GatedRmsNorm,
    /// `norm/row_norms.wgsl`, entry `l2_norm`.
    L2Norm,
    /// `gdn/causal_conv1d.wgsl` (with SiLU).
    CausalConv1d,
    /// `gdn/delta_rule.wgsl` for key heads of `d_k` dims.
    DeltaRule { d_k: u32 },
    /// `attention/qk_norm_rope.wgsl`, writing a KV cache of f16 (packed) or f32 elements.
    QkNormRope { kv_f16: bool },
    /// `attention/flash_attention.wgsl`, entry `flash_attention`.
    FlashAttention { kv_f16: bool },
    /// `attention/flash_attention.wgsl`, entry `flash_combine`.
    FlashCombine,
    /// `attention/flash_prefill.wgsl` for heads of `head_dim`.
    FlashPrefill { head_dim: u32, kv_f16: bool },
}

impl Kernel {
    pub fn entry_point(self) -> &'static str {
        match self {
            Kernel::Matvec(_) => "matvec",
            Kernel::MatvecExperts(_) | Kernel::MatvecSlots(_) => "matvec_experts",
            Kernel::Embed(_) => "embed",
            Kernel::Matmul(_) => "matmul",
            Kernel::MoeRoute => "moe_route",
            Kernel::MoeGroup => "moe_group",
            Kernel::MatmulExperts(_) => "matmul_experts",
            Kernel::Swiglu => "swiglu",
            Kernel::MoeCombine => "moe_combine",
            Kernel::ArgmaxPartial => "argmax_partial",
            Kernel::ArgmaxFinal => "argmax_final",
            Kernel::TopKPartial => "top_k_partial",
            Kernel::TopKSample => "top_k_sample",
            Kernel::RepetitionPenalty => "repetition_penalty",
            Kernel::RmsNorm => "rms_norm",
            Kernel::AddRmsNorm => "add_rms_norm",
            Kernel::GatedRmsNorm => "gated_rms_norm",
            Kernel::L2Norm => "l2_norm",
            Kernel::CausalConv1d => "causal_conv1d",
            Kernel::DeltaRule { .. } => "delta_rule",
            Kernel::QkNormRope { .. } => "qk_norm_rope",
            Kernel::FlashAttention { .. } => "flash_attention",
            Kernel::FlashCombine => "flash_combine",
            Kernel::FlashPrefill { .. } => "flash_prefill",
        }
    }

    /// Values of the kernel's `override` constants (workgroup size, rows per workgroup).
    pub fn overrides(self) -> &'static [(&'static str, u32)] {
        match self {
            Kernel::Matvec(_) | Kernel::MatvecExperts(_) => &[("WG", 64), ("ROWS", 16)],
            // Many slots fill the device on their own: more rows per workgroup, fewer
            // workgroups (a CPU device pays per workgroup; pp128 of bench-qwen35moe on
            // lavapipe 5.9 -> 6.2 tok/s, while decode's few slots want 16).
            Kernel::MatvecSlots(_) => &[("WG", 64), ("ROWS", 64)],
            Kernel::MoeRoute | Kernel::Swiglu | Kernel::MoeCombine | Kernel::Embed(_) => {
                &[("WG", 64)]
            }
            Kernel::RmsNorm
            | Kernel::AddRmsNorm
            | Kernel::GatedRmsNorm
            | Kernel::L2Norm
            | Kernel::CausalConv1d
            | Kernel::QkNormRope { .. } => &[("WG", 64)],
            Kernel::DeltaRule { .. }
            | Kernel::Matmul(_)
            | Kernel::MatmulExperts(_)
            | Kernel::MoeGroup
            | Kernel::FlashAttention { .. }
            | Kernel::FlashCombine
            | Kernel::FlashPrefill { .. }
            | Kernel::ArgmaxPartial
            | Kernel::ArgmaxFinal
            | Kernel::TopKPartial
            | Kernel::TopKSample
            | Kernel::RepetitionPenalty => &[],
        }
    }

    /// The value of one of [`Kernel::overrides`] (0 if the kernel has no such constant).
    pub fn override_value(self, name: &str) -> u32 {
        self.overrides()
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |&(_, v)| v)
    }

    /// The kernel's own file under `shaders/`.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::Matvec(_) | Kernel::MatvecExperts(_) | Kernel::MatvecSlots(_) => {
                "linear/matvec.wgsl"
            }
            Kernel::Embed(_) => "linear/embed.wgsl",
            Kernel::Matmul(_) | Kernel::MatmulExperts(_) => "linear/matmul.wgsl",
            Kernel::MoeRoute => "moe/router.wgsl",
            Kernel::MoeGroup => "moe/group.wgsl",
            Kernel::Swiglu | Kernel::MoeCombine => "moe/combine.wgsl",
            Kernel::ArgmaxPartial | Kernel::ArgmaxFinal => "sample/argmax.wgsl",
            Kernel::TopKPartial | Kernel::TopKSample => "sample/top_k.wgsl",
            Kernel::RepetitionPenalty => "sample/penalty.wgsl",
            Kernel::RmsNorm | Kernel::AddRmsNorm | Kernel::GatedRmsNorm | Kernel::L2Norm => {
                "norm/row_norms.wgsl"
            }
            Kernel::CausalConv1d => "gdn/causal_conv1d.wgsl",
            Kernel::DeltaRule { .. } => "gdn/delta_rule.wgsl",
            Kernel::QkNormRope { .. } => "attention/qk_norm_rope.wgsl",
            Kernel::FlashAttention { .. } | Kernel::FlashCombine => {
                "attention/flash_attention.wgsl"
            }
            Kernel::FlashPrefill { .. } => "attention/flash_prefill.wgsl",
        }
    }

    /// Every kernel variant the crate can build (for the naga translation test).
    pub fn all() -> Vec<Kernel> {
        let mut all: Vec<Kernel> = GgmlType::SUPPORTED
            .iter()
            .flat_map(|&t| {
                [
                    Kernel::Matvec(t),
                    Kernel::MatvecExperts(t),
                    Kernel::MatvecSlots(t),
                    Kernel::Embed(t),
                    Kernel::Matmul(t),
                    Kernel::MatmulExperts(t),
                ]
            })
            .collect();
        all.extend([
            Kernel::RmsNorm,
            Kernel::AddRmsNorm,
            Kernel::GatedRmsNorm,
            Kernel::L2Norm,
            Kernel::CausalConv1d,
            // Qwen3.5's key head dim, and the tiny test models'.
            Kernel::DeltaRule { d_k: 128 },
            Kernel::DeltaRule { d_k: 16 },
            Kernel::QkNormRope { kv_f16: true },
            Kernel::QkNormRope { kv_f16: false },
            Kernel::FlashAttention { kv_f16: true },
            Kernel::FlashAttention { kv_f16: false },
            Kernel::FlashCombine,
            // Qwen3.5's head dim, qwen3moe's, the tiny models'.
            Kernel::FlashPrefill {
                head_dim: 256,
                kv_f16: true,
            },
            Kernel::FlashPrefill {
                head_dim: 128,
                kv_f16: false,
            },
            Kernel::FlashPrefill {
                head_dim: 16,
                kv_f16: true,
            },
            Kernel::MoeRoute,
            Kernel::MoeGroup,
            Kernel::Swiglu,
            Kernel::MoeCombine,
            Kernel::ArgmaxPartial,
            Kernel::ArgmaxFinal,
            Kernel::TopKPartial,
            Kernel::TopKSample,
            Kernel::RepetitionPenalty,
        ]);
        all
    }
}

/// Which reduction the kernels use: subgroup operations where the adapter has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    pub subgroups: bool,
}

impl Variant {
    pub fn for_features(f: &GpuFeatures) -> Variant {
        Variant {
            subgroups: f.subgroup,
        }
    }
}

/// The complete WGSL of `kernel` in `variant`: helpers and decoders, the kernel's file
/// (which declares the `override` constants), then the reduction sized by them (naga
/// resolves overrides in declaration order).
pub fn assemble(kernel: Kernel, variant: Variant) -> Result<String, GpuError> {
    let reduce = if variant.subgroups {
        "common/reduce_subgroup.wgsl"
    } else {
        "common/reduce_shared.wgsl"
    };
    let mut parts = Vec::new();
    match kernel {
        Kernel::Matvec(ty) | Kernel::MatvecExperts(ty) | Kernel::MatvecSlots(ty) => {
            parts.push("common/bytes.wgsl");
            parts.extend(quant_files(ty)?);
            parts.push(dot_file(ty));
        }
        Kernel::Matmul(ty) | Kernel::MatmulExperts(ty) => {
            parts.push("common/bytes.wgsl");
            parts.extend(quant_files(ty)?);
            parts.push(stage_file(ty));
        }
        Kernel::Embed(ty) => {
            parts.push("common/bytes.wgsl");
            parts.extend(quant_files(ty)?);
        }
        Kernel::QkNormRope { kv_f16 }
        | Kernel::FlashAttention { kv_f16 }
        | Kernel::FlashPrefill { kv_f16, .. } => {
            parts.push(if kv_f16 {
                "attention/kv_f16.wgsl"
            } else {
                "attention/kv_f32.wgsl"
            });
        }
        // The combine pass never touches the caches, but its module declares them.
        Kernel::FlashCombine => parts.push("attention/kv_f32.wgsl"),
        _ => {}
    }
    parts.push(kernel.file());
    parts.push(reduce);
    // Sizes that fix per-invocation register arrays must be constants, not overrides.
    let header = match kernel {
        Kernel::DeltaRule { d_k } => format!("const D_K: u32 = {d_k}u;\n"),
        Kernel::FlashPrefill { head_dim, .. } => format!(
            "const HD: u32 = {head_dim}u;\nconst QT: u32 = {}u;\n",
            prefill_query_tile(head_dim)
        ),
        _ => String::new(),
    };
    Ok(header
        + &parts
            .iter()
            .map(|p| format!("// ---- {p}\n{}", file(p)))
            .collect::<Vec<_>>()
            .join("\n"))
}

/// Queries per tiled prefill attention workgroup: as many as keep the staged query tile
/// within 8 KiB of workgroup memory, 1 to 16.
pub fn prefill_query_tile(head_dim: u32) -> u32 {
    (2048 / head_dim.max(1)).clamp(1, 16)
}

/// A pipeline's identity: the kernel (which fixes its `override` values) and the variant.
type PipelineKey = (Kernel, Variant);

/// Compute pipelines by [`PipelineKey`], created on first use.
#[derive(Default)]
pub struct PipelineCache {
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
}

impl PipelineCache {
    /// Pipelines created so far.
    pub fn len(&self) -> usize {
        self.pipelines.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(
        &self,
        device: &wgpu::Device,
        kernel: Kernel,
        variant: Variant,
    ) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        let key = (kernel, variant);
        let mut map = self
            .pipelines
            .lock()
            .map_err(|_| GpuError::Pipeline("pipeline cache poisoned".into()))?;
        if let Some(p) = map.get(&key) {
            return Ok(p.clone());
        }
        let source = assemble(kernel, variant)?;
        let overrides: Vec<(&str, f64)> = kernel
            .overrides()
            .iter()
            .map(|&(k, v)| (k, v as f64))
            .collect();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(kernel.entry_point()),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        // naga's injected bounds checks, loop counters and division guards cost a large share
        // of the inner loops on a CPU device (decode +11%, prefill +5% on lavapipe). Vulkan
        // bounds buffer accesses itself (robust buffer access, which wgpu enables), so there
        // our own kernels go without them; elsewhere they keep naga's checks.
        let module = if device.adapter_info().backend == wgpu::Backend::Vulkan {
            // SAFETY: the driver keeps every buffer access within its binding, and the
            // kernels' loops are bounded by their params (no infinite loop to guard against).
            unsafe {
                device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        } else {
            device.create_shader_module(desc)
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry_point()),
            layout: None,
            module: &module,
            entry_point: Some(kernel.entry_point()),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &overrides,
                ..Default::default()
            },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Pipeline(format!("{kernel:?}: {e}")));
        }
        let pipeline = Arc::new(pipeline);
        map.insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
