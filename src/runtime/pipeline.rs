//! Shader assembly and the pipeline cache.
//!
//! A kernel's WGSL is its [`Declaration`]: the constants Rust injects, the shared pieces it
//! includes, its own file, then the reduction of the variant; [`assemble`] is the one place
//! they are joined. [`Kernel`] is the pipeline-cache key, and each key has one lookup of its
//! declaration, in the launcher module. Pipelines are created once per (kernel, variant)
//! and shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuFeatures;
use crate::runtime::kernel::Declaration;
use crate::runtime::ops::linear::matmul::MatmulForm;
use crate::runtime::ops::{attention, copy_floats, gdn, linear, moe, norm, sample};

/// Every WGSL file of the crate, by its path under `shaders/` (embedded by build.rs).
pub const SHADER_FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shader_files.rs"));

fn file(path: &str) -> Result<&'static str, GpuError> {
    SHADER_FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, src)| *src)
        .ok_or_else(|| GpuError::Pipeline(format!("no shader file shaders/{path}")))
}

/// A kernel variant: the pipeline-cache key. What each builds is its [`Kernel::declaration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Segment types, `rows` per workgroup (one of `matvec::ROW_CHOICES`), folds.
    Matvec(linear::matvec::MatvecForm),
    /// How a workgroup splits the rows, one of `matvec_experts::splits()`.
    MatvecExperts {
        ty: GgmlType,
        split: linear::matvec_experts::ExpertRows,
    },
    Embed(GgmlType),
    /// A step over a few tokens, each weight unit decoded once for all; `rows` per
    /// workgroup, one of `matvec_batch::ROW_CHOICES`.
    MatvecBatch {
        ty: GgmlType,
        rows: u32,
    },
    /// The routed experts of a step over a few tokens, grouped by expert; `rows` per
    /// workgroup as [`Kernel::MatvecBatch`].
    MatvecBatchExperts {
        ty: GgmlType,
        rows: u32,
    },
    Matmul {
        ty: GgmlType,
        form: linear::matmul::MatmulForm,
    },
    /// Slots per token tile, one of `matmul::TOKEN_TILES`.
    MatmulExperts {
        ty: GgmlType,
        tokens: u32,
        form: linear::matmul::MatmulForm,
    },
    /// Gate, up, shared gate and shared up weight types; rows per workgroup.
    MoeGateUp {
        types: [GgmlType; 4],
        rows: u32,
    },
    /// Routed and shared down weight types; rows per workgroup.
    MoeDown {
        types: [GgmlType; 2],
        rows: u32,
    },
    MoeRoute,
    MoeGroup,
    CopyFloats,
    Swiglu,
    MoeCombine,
    ArgmaxPartial,
    ArgmaxFinal,
    TopKPartial,
    TopKSample,
    RepetitionPenalty,
    RmsNorm,
    AddRmsNorm,
    GatedRmsNorm,
    CausalConv1d,
    /// For key heads of `d_k` dims.
    DeltaRule {
        d_k: u32,
    },
    /// For key heads of `d_k` dims.
    ConvDeltaRule {
        d_k: u32,
    },
    /// For key heads of `d_k` dims.
    DeltaChunkWy {
        d_k: u32,
    },
    /// For key heads of `d_k` dims.
    DeltaChunkState {
        d_k: u32,
    },
    /// Writing a KV cache of f16 (packed) or f32 elements.
    QkNormRope {
        kv_f16: bool,
    },
    /// For heads of `head_dim`, `heads` query heads a workgroup.
    FlashDecode {
        kv_f16: bool,
        head_dim: u32,
        heads: u32,
    },
    FlashDecodeCombine,
    /// For heads of `head_dim`.
    FlashPrefill {
        head_dim: u32,
        kv_f16: bool,
    },
    /// For heads of `head_dim`, `group` query heads a KV head, key tiles of `key_tile`,
    /// scores in cooperative `form`.
    FlashPrefillGqa {
        head_dim: u32,
        kv_f16: bool,
        group: u32,
        key_tile: u32,
        form: MatmulForm,
    },
}

impl Kernel {
    /// The declaration of this variant, from its launcher module.
    pub fn declaration(self) -> Result<Declaration, GpuError> {
        Ok(match self {
            Kernel::Matvec(form) => linear::matvec::declaration(form)?,
            Kernel::MatvecExperts { ty, split } => linear::matvec_experts::declaration(ty, split)?,
            Kernel::Embed(ty) => linear::embed::declaration(ty)?,
            Kernel::Matmul { ty, form } => linear::matmul::declaration(ty, form)?,
            Kernel::MatvecBatch { ty, rows } => linear::matvec_batch::declaration(ty, rows)?,
            Kernel::MatvecBatchExperts { ty, rows } => {
                linear::matvec_batch_experts::declaration(ty, rows)?
            }
            Kernel::CopyFloats => copy_floats::declaration(),
            Kernel::MatmulExperts { ty, tokens, form } => {
                linear::matmul_experts::declaration(ty, tokens, form)?
            }
            Kernel::MoeGateUp { types, rows } => moe::moe_gate_up::declaration(types, rows)?,
            Kernel::MoeDown { types, rows } => moe::moe_down::declaration(types, rows)?,
            Kernel::MoeRoute => moe::moe_route::declaration(),
            Kernel::MoeGroup => moe::moe_group::declaration(),
            Kernel::Swiglu => moe::swiglu::declaration(),
            Kernel::MoeCombine => moe::moe_combine::declaration(),
            Kernel::ArgmaxPartial => sample::argmax::partial_declaration(),
            Kernel::ArgmaxFinal => sample::argmax::final_declaration(),
            Kernel::TopKPartial => sample::top_k::partial_declaration(),
            Kernel::TopKSample => sample::top_k::sample_declaration(),
            Kernel::RepetitionPenalty => sample::repetition_penalty::declaration(),
            Kernel::RmsNorm => norm::rms_norm::declaration(),
            Kernel::AddRmsNorm => norm::add_rms_norm::declaration(),
            Kernel::GatedRmsNorm => norm::gated_rms_norm::declaration(),
            Kernel::CausalConv1d => gdn::causal_conv1d::declaration(),
            Kernel::DeltaRule { d_k } => gdn::delta_rule::declaration(d_k),
            Kernel::ConvDeltaRule { d_k } => gdn::conv_delta_rule::declaration(d_k),
            Kernel::DeltaChunkWy { d_k } => gdn::delta_chunk_wy::declaration(d_k),
            Kernel::DeltaChunkState { d_k } => gdn::delta_chunk_state::declaration(d_k),
            Kernel::QkNormRope { kv_f16 } => attention::qk_norm_rope::declaration(kv_f16),
            Kernel::FlashDecode {
                kv_f16,
                head_dim,
                heads,
            } => attention::flash_decode::declaration(kv_f16, head_dim, heads),
            Kernel::FlashDecodeCombine => attention::flash_decode::combine_declaration(),
            Kernel::FlashPrefill { head_dim, kv_f16 } => {
                attention::flash_prefill::declaration(head_dim, kv_f16)
            }
            Kernel::FlashPrefillGqa {
                head_dim,
                kv_f16,
                group,
                key_tile,
                form,
            } => {
                attention::flash_prefill::gqa_declaration(head_dim, kv_f16, group, key_tile, form)?
            }
        })
    }

    /// Every kernel variant the crate can build (for the naga tests).
    pub fn all() -> Vec<Kernel> {
        let mut all: Vec<Kernel> = Vec::new();
        for ty in GgmlType::SUPPORTED {
            let matvecs = linear::matvec::ROW_CHOICES
                .map(|rows| Kernel::Matvec(linear::matvec::MatvecForm::single(ty, rows)));
            let experts = linear::matvec_experts::splits()
                .into_iter()
                .map(|split| Kernel::MatvecExperts { ty, split });
            all.extend(matvecs);
            all.extend(experts);
            // The types a form cannot stage run in another (`MatmulForm::for_weights`).
            for form in MATMUL_FORMS.into_iter().filter(|f| f.for_weights(ty) == *f) {
                let expert_tiles = linear::matmul::TOKEN_TILES
                    .map(|tokens| Kernel::MatmulExperts { ty, tokens, form });
                all.extend(expert_tiles);
                all.push(Kernel::Matmul { ty, form });
            }
            all.push(Kernel::Embed(ty));
            for rows in linear::matvec_batch::ROW_CHOICES {
                all.push(Kernel::MatvecBatch { ty, rows });
                all.push(Kernel::MatvecBatchExperts { ty, rows });
            }
        }
        // AMD's wave64 makes workgroups of 512.
        all.push(Kernel::Matmul {
            ty: GgmlType::Q4K,
            form: MatmulForm::Coop {
                size: 16,
                subgroup: 64,
            },
        });
        use linear::matvec::{MatvecForm, NormFold};
        use GgmlType::{Bf16, F32, Q4K, Q5K, Q6K, Q8_0};
        // The fused forms, with the mixes of types real Q4_K_M files put side by side.
        all.extend([
            Kernel::Matvec(MatvecForm {
                types: [Q5K, Q4K, F32, Bf16],
                rows: 1,
                norm: NormFold::Row,
                add: false,
            }),
            Kernel::Matvec(MatvecForm {
                types: [Q6K; 4],
                rows: 4,
                norm: NormFold::GatedHeads,
                add: true,
            }),
            Kernel::Matvec(MatvecForm {
                types: [Q4K, Q4K, Q6K, Q8_0],
                rows: 16,
                norm: NormFold::Row,
                add: true,
            }),
            Kernel::MoeGateUp {
                types: [Q4K, Q4K, Q4K, Q8_0],
                rows: 2,
            },
            Kernel::MoeGateUp {
                types: [Q5K, Q5K, Q6K, Q6K],
                rows: 16,
            },
            Kernel::MoeDown {
                types: [Q6K, Q4K],
                rows: 1,
            },
            Kernel::MoeDown {
                types: [Q4K, Q8_0],
                rows: 16,
            },
        ]);
        all.extend([
            Kernel::RmsNorm,
            Kernel::AddRmsNorm,
            Kernel::GatedRmsNorm,
            Kernel::CausalConv1d,
            // Qwen3.5's key head dim, and the tiny test models'.
            Kernel::DeltaRule { d_k: 128 },
            Kernel::DeltaRule { d_k: 16 },
            Kernel::ConvDeltaRule { d_k: 128 },
            Kernel::ConvDeltaRule { d_k: 16 },
            Kernel::DeltaChunkWy { d_k: 128 },
            Kernel::DeltaChunkWy { d_k: 16 },
            Kernel::DeltaChunkState { d_k: 128 },
            Kernel::DeltaChunkState { d_k: 16 },
            Kernel::QkNormRope { kv_f16: true },
            Kernel::QkNormRope { kv_f16: false },
            // Qwen3.5's 8 heads of 256 a KV head, qwen3moe's of 128, the tiny models'.
            Kernel::FlashDecode {
                kv_f16: true,
                head_dim: 256,
                heads: 8,
            },
            Kernel::FlashDecode {
                kv_f16: false,
                head_dim: 128,
                heads: 16,
            },
            Kernel::FlashDecode {
                kv_f16: true,
                head_dim: 16,
                heads: 2,
            },
            Kernel::FlashDecodeCombine,
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
        ]);
        // Qwen3.5's 8 query heads of 256 a KV head (key tiles for 32 and 48 KiB of
        // workgroup memory), qwen3moe's (32 / 4) of 128, the tiny models' 2 of 16, in each
        // cooperative form.
        let cooperative = MATMUL_FORMS
            .into_iter()
            .filter(|&f| linear::matmul::form_size(f) != 0);
        for form in cooperative {
            let shapes = [
                (256, true, 8, 16),
                (256, true, 8, 32),
                (128, false, 8, 32),
                (16, true, 2, 32),
            ];
            all.extend(shapes.map(
                |(head_dim, kv_f16, group, key_tile)| Kernel::FlashPrefillGqa {
                    head_dim,
                    kv_f16,
                    group,
                    key_tile,
                    form,
                },
            ));
        }
        all.extend([
            Kernel::MoeRoute,
            Kernel::MoeGroup,
            Kernel::CopyFloats,
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

/// The matmul forms every type is built in for the naga tests (the cooperative ones
/// last): cooperative matrices at NVIDIA's and Apple's sizes by subgroups of 32.
const MATMUL_FORMS: [MatmulForm; 6] = [
    MatmulForm::Tiled,
    MatmulForm::TiledHalf,
    MatmulForm::TiledInt8,
    MatmulForm::CoopEmulated,
    MatmulForm::Coop {
        size: 16,
        subgroup: 32,
    },
    MatmulForm::Coop {
        size: 8,
        subgroup: 32,
    },
];

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

/// The complete WGSL of `decl` in `variant`: the enabled extensions, the injected constants, the included pieces,
/// the kernel's file, then the reduction (which sizes its scratch by `WG`).
pub fn assemble(decl: &Declaration, variant: Variant) -> Result<String, GpuError> {
    let reduce = if variant.subgroups {
        "common/reduce_subgroup.wgsl"
    } else {
        "common/reduce_shared.wgsl"
    };
    let mut source: String = decl
        .enables
        .iter()
        .map(|extension| format!("enable {extension};\n"))
        .collect();
    for (name, value) in &decl.constants {
        source.push_str(&format!("const {name}: u32 = {value}u;\n"));
    }
    for path in &decl.includes {
        source.push_str(&format!("// ---- {path}\n{}\n", file(path)?));
    }
    for ns in &decl.namespaces {
        let sources = ns
            .files
            .iter()
            .map(|path| file(path))
            .collect::<Result<Vec<_>, _>>()?;
        source.push_str(&format!("// ---- weights{}: {:?}\n", ns.suffix, ns.files));
        source.push_str(&ns.rename(&sources));
    }
    for path in [&decl.file, &reduce] {
        source.push_str(&format!("// ---- {path}\n{}\n", file(path)?));
    }
    Ok(source)
}

/// A pipeline's identity: the kernel variant (which fixes its declaration) and the reduction.
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
        let decl = kernel.declaration()?;
        let source = assemble(&decl, variant)?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(decl.entry),
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
            label: Some(decl.entry),
            layout: None,
            module: &module,
            entry_point: Some(decl.entry),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
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
