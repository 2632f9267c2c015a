//! Synthetic models (random weights, real architecture) built from a [`ModelConfig`], so
//! that no test needs a downloaded file.
//!
//! The synthetic values follow the conventions of llama.cpp's converter, which the forward
//! pass relies on: RMSNorm weights stored as 1 + w (except `ssm_norm`), `ssm_a` = -exp(A_log)
//! (negative), norms / routers / conv / 1-D tensors in f32, other weights in the file type.

use crate::error::Error;
use crate::loader::config::{
    FfnConfig, LayerKind, ModelConfig, TensorRole, TensorSpec, DEFAULT_FULL_ATTENTION_INTERVAL,
};
use crate::loader::gguf::{MetaArray, MetaValue, ALIGNMENT_KEY, DEFAULT_ALIGNMENT};
use crate::loader::gguf_writer::GgufWriter;
use crate::loader::names::{self, arch as k, general, layer};
use crate::loader::quant::GgmlType;
use crate::loader::quantize::quantize;
use crate::loader::random_blocks::{fill_random_blocks, writes_blocks};
use crate::loader::vocab;
use crate::rng::SplitMix64;

/// How to synthesise a model.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub seed: u64,
    /// Type of the large weights: f32, f16, bf16 (random floats), or q8_0, q4_0, q4_K, q6_K
    /// (random blocks, `random_blocks`); a tensor whose rows are not whole blocks of it
    /// falls back to q8_0, else f16 (as llama-quantize falls back).
    pub weight_type: GgmlType,
    /// With `weight_type` q4_K: the tensors llama-quantize's Q4_K_M gives more bits get q6_K
    /// (see [`q4_k_m_upgrade`]), so a benchmark reads the same mix as a real Q4_K_M file.
    pub q4_k_m: bool,
    /// Write `attention.recurrent_layers` instead of `full_attention_interval`.
    pub explicit_schedule: bool,
    pub vocabulary: Vocabulary,
    /// 0: routers spread tokens evenly over the experts, as random weights do. Above 0:
    /// each layer favours a few experts, as trained routers do ([`skew_router`]).
    pub router_skew: f32,
}

/// Which tokenizer a synthetic model carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// 256 byte tokens, 4 merges, 3 ChatML specials (263 ids), padded to the model's vocabulary.
    Bytes,
    /// The real Qwen3.5 vocabulary (248,044 ranked tokens and 33 specials, 248,320 ids).
    Qwen35,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            seed: 0x5EED,
            weight_type: GgmlType::F32,
            q4_k_m: false,
            explicit_schedule: false,
            vocabulary: Vocabulary::Bytes,
            router_skew: 0.0,
        }
    }
}

/// A writer holding a random model of `config`'s architecture and shapes. MTP blocks are
/// not synthesised, so the file's `block_count` is the trunk's.
pub fn synthetic_model(config: &ModelConfig, opts: &SynthOptions) -> Result<GgufWriter, Error> {
    if opts.q4_k_m && opts.weight_type != GgmlType::Q4K {
        return Err(Error::InvalidArgument(format!(
            "the Q4_K_M mix is built on q4_K weights, not {}",
            opts.weight_type
        )));
    }
    if !SYNTH_TYPES.contains(&opts.weight_type) {
        let names: Vec<&str> = SYNTH_TYPES.iter().map(|t| t.name()).collect();
        return Err(Error::InvalidArgument(format!(
            "synthetic weights can be {}, not {}",
            names.join(", "),
            opts.weight_type
        )));
    }
    config.validate()?;
    let mut w = GgufWriter::new();
    write_model_metadata(&mut w, config, opts);
    match opts.vocabulary {
        Vocabulary::Bytes => vocab::write_byte_vocabulary(&mut w, config.n_vocab)?,
        Vocabulary::Qwen35 => {
            let ranks = vocab::parse_tiktoken(vocab::QWEN35_TIKTOKEN)?;
            vocab::write_qwen35_vocabulary(&mut w, &ranks, config.n_vocab)?;
        }
    }
    let mut rng = SplitMix64::new(opts.seed);
    for spec in config.tensor_specs() {
        let ty = if spec.role.kept_f32() {
            GgmlType::F32
        } else if opts.q4_k_m && q4_k_m_upgrade(config, &spec.name) {
            storage_type(GgmlType::Q6K, spec.dims[0])
        } else {
            storage_type(opts.weight_type, spec.dims[0])
        };
        if writes_blocks(ty) {
            // Quantized weights as random blocks, generated while the file is written: the
            // full Qwen3.5-35B-A3B is 35 billion values, too many to quantize from floats.
            let seed = rng.next_u64();
            let scale = fan_in_scale(&spec);
            let fill =
                move |first: u64, out: &mut [u8]| fill_random_blocks(ty, scale, seed, first, out);
            w.add_generated_tensor(&spec.name, &spec.dims, ty, Box::new(fill))?;
            continue;
        }
        let mut values = synthetic_values(&spec, &mut rng);
        if spec.role == TensorRole::Router && opts.router_skew > 0.0 {
            let seed = opts.seed ^ name_hash(&spec.name);
            skew_router(&mut values, spec.dims[0] as usize, opts.router_skew, seed);
        }
        let data = quantize(ty, &values)
            .map_err(|e| Error::InvalidArgument(format!("tensor '{}': {e}", spec.name)))?;
        w.add_tensor(&spec.name, &spec.dims, ty, data)?;
    }
    Ok(w)
}

/// The half-width of a weight's uniform values: variance 1/fan_in keeps activations near
/// unit scale through every projection.
fn fan_in_scale(spec: &TensorSpec) -> f32 {
    (3.0 / spec.dims[0] as f32).sqrt()
}

/// The weight types [`synthetic_model`] can write.
pub const SYNTH_TYPES: [GgmlType; 9] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Iq4Xs,
];

/// `wanted`, or the fallback for rows of `ne0` elements that are not whole blocks of it.
fn storage_type(wanted: GgmlType, ne0: u64) -> GgmlType {
    [wanted, GgmlType::Q8_0, GgmlType::F16]
        .into_iter()
        .find(|t| ne0 % t.layout().block_size == 0)
        .unwrap_or(GgmlType::F32)
}

/// Whether llama-quantize's Q4_K_M writes tensor `name` as q6_K rather than q4_K: the output
/// head (and the embedding when it is tied to it), every attn_v, and attn_qkv and the
/// ffn_down family in the layers its `use_more_bits` picks (the first and last eighth of
/// the stack and every third layer between).
pub fn q4_k_m_upgrade(config: &ModelConfig, name: &str) -> bool {
    if name == names::OUTPUT || (name == names::TOKEN_EMBD && config.tied_embeddings) {
        return true;
    }
    let Some((layer, tensor)) = name
        .strip_prefix("blk.")
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(i, t)| Some((i.parse::<usize>().ok()?, t)))
    else {
        return false;
    };
    let n = config.layers.len();
    let more_bits = layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2;
    tensor.starts_with("attn_v.")
        || (more_bits && (tensor.starts_with("attn_qkv.") || tensor.starts_with("ffn_down")))
}

/// `general.file_type` (`enum llama_ftype`) of a file whose weights are mostly `ty`.
fn file_type(ty: GgmlType, q4_k_m: bool) -> u32 {
    if q4_k_m {
        return 15;
    }
    match ty {
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q8_0 => 7,
        GgmlType::Q4K => 14,
        GgmlType::Q5K => 16,
        GgmlType::Q6K => 18,
        GgmlType::Iq4Xs => 30,
        GgmlType::Bf16 => 32,
        _ => 0,
    }
}

fn write_model_metadata(w: &mut GgufWriter, c: &ModelConfig, opts: &SynthOptions) {
    let arch = c.arch.gguf_name();
    let u32v = MetaValue::U32;
    w.set(general::ARCHITECTURE, MetaValue::String(arch.into()));
    w.set(general::NAME, MetaValue::String(c.name.clone()));
    w.set(ALIGNMENT_KEY, u32v(DEFAULT_ALIGNMENT as u32));
    w.set(
        general::FILE_TYPE,
        u32v(file_type(opts.weight_type, opts.q4_k_m)),
    );
    w.set(general::QUANTIZATION_VERSION, u32v(2));
    let mut put = |suffix: &str, v: MetaValue| w.set(&names::arch_key(arch, suffix), v);
    put(k::CONTEXT_LENGTH, u32v(c.n_ctx_train));
    put(k::EMBEDDING_LENGTH, u32v(c.n_embd));
    put(k::BLOCK_COUNT, u32v(c.layers.len() as u32));
    let a = &c.attention;
    put(k::HEAD_COUNT, u32v(a.n_head));
    put(k::HEAD_COUNT_KV, u32v(a.n_head_kv));
    put(k::KEY_LENGTH, u32v(a.head_dim));
    put(k::VALUE_LENGTH, u32v(a.head_dim));
    put(k::RMS_EPS, MetaValue::F32(c.rms_eps));
    put(k::ROPE_FREQ_BASE, MetaValue::F32(a.rope_base));
    put(k::ROPE_DIMENSION_COUNT, u32v(a.n_rot));
    if c.arch.is_hybrid() {
        let sections = a.rope_sections.iter().map(|&s| s as i32).collect();
        put(
            k::ROPE_DIMENSION_SECTIONS,
            MetaValue::Array(MetaArray::I32(sections)),
        );
        let interval = DEFAULT_FULL_ATTENTION_INTERVAL;
        if !opts.explicit_schedule
            && c.layers == ModelConfig::interval_schedule(c.layers.len(), interval)
        {
            put(k::FULL_ATTENTION_INTERVAL, u32v(interval));
        } else {
            let flags = c.layers.iter().map(|&l| l == LayerKind::Linear).collect();
            put(
                k::RECURRENT_LAYERS,
                MetaValue::Array(MetaArray::Bool(flags)),
            );
        }
    }
    if let Some(g) = &c.gdn {
        put(k::SSM_CONV_KERNEL, u32v(g.conv_kernel));
        put(k::SSM_STATE_SIZE, u32v(g.d_k));
        put(k::SSM_GROUP_COUNT, u32v(g.n_k_heads));
        put(k::SSM_TIME_STEP_RANK, u32v(g.n_v_heads));
        put(k::SSM_INNER_SIZE, u32v(g.value_dim() as u32));
    }
    match &c.ffn {
        FfnConfig::Dense { n_ff } => put(k::FEED_FORWARD_LENGTH, u32v(*n_ff)),
        FfnConfig::Moe(m) => {
            put(k::EXPERT_COUNT, u32v(m.n_expert));
            put(k::EXPERT_USED_COUNT, u32v(m.n_expert_used));
            put(k::EXPERT_FEED_FORWARD_LENGTH, u32v(m.expert_ffn));
            if let Some(fs) = m.shared_ffn {
                put(k::EXPERT_SHARED_FEED_FORWARD_LENGTH, u32v(fs));
            }
            if !m.norm_top_k {
                put(k::EXPERT_WEIGHTS_NORM, MetaValue::Bool(false));
            }
        }
    }
}

/// Scales the router row (`n_embd` weights) of the expert ranked `r` in a random order by
/// `(1 + r)^-skew`: a token's logit for expert e is about `scale_e * N(0, 1)`, so the top
/// of the ranking wins its top-k far more often than the tail, as the measured use of
/// trained MoE routers is skewed (a few experts per layer take a large share of the
/// tokens). The order is the layer's own, from `seed`.
pub fn skew_router(values: &mut [f32], n_embd: usize, skew: f32, seed: u64) {
    let n_expert = values.len() / n_embd.max(1);
    let mut order: Vec<usize> = (0..n_expert).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n_expert).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for (rank, &e) in order.iter().enumerate() {
        let scale = (1.0 + rank as f32).powf(-skew);
        values[e * n_embd..(e + 1) * n_embd]
            .iter_mut()
            .for_each(|v| *v *= scale);
    }
}

/// FNV-1a of a tensor name: a per-tensor seed that leaves the main generator's sequence,
/// and so every other tensor, as it is without skew.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Random values with the scale and sign conventions of a converted checkpoint.
fn synthetic_values(spec: &TensorSpec, rng: &mut SplitMix64) -> Vec<f32> {
    let n = spec.n_elements() as usize;
    let mut gen = |f: &dyn Fn(f32) -> f32| (0..n).map(|_| f(rng.symmetric_f32())).collect();
    let name = spec.name.as_str();
    if name.ends_with(layer::SSM_A) {
        // -exp(A_log) with A_log in [-1, 1): decays between exp(-e) and exp(-1/e) per unit dt.
        return gen(&|u| -u.exp());
    }
    if name.ends_with(layer::SSM_DT_BIAS) || name.ends_with(layer::SSM_CONV1D) {
        return gen(&|u| 0.5 * u);
    }
    match spec.role {
        // Stored as 1 + w (ssm_norm as is, but also centred on 1 in trained checkpoints).
        TensorRole::Norm => gen(&|u| 1.0 + 0.1 * u),
        _ => {
            let scale = fan_in_scale(spec);
            gen(&|u| scale * u)
        }
    }
}

/// A file name that says which synthetic model a file holds (`tiny-qwen35moe-f32-seed24301.gguf`).
pub fn synthetic_file_name(config: &ModelConfig, opts: &SynthOptions) -> String {
    let skew = if opts.router_skew > 0.0 {
        format!("-skew{}", opts.router_skew)
    } else {
        String::new()
    };
    format!(
        "{}-{}{}{skew}-seed{}.gguf",
        config.name.to_ascii_lowercase().replace(' ', "-"),
        opts.weight_type,
        if opts.q4_k_m { "_M" } else { "" },
        opts.seed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skewed routers change the router tensors only, and favour a few experts: the ranked
    /// rows' norms fall as (1 + rank)^-skew.
    #[test]
    fn router_skew_changes_only_the_routers() {
        let config = crate::loader::presets::preset("tiny-qwen35moe").unwrap();
        let even = synthetic_model(&config, &SynthOptions::default())
            .unwrap()
            .to_bytes();
        let skewed = SynthOptions {
            router_skew: 1.0,
            ..SynthOptions::default()
        };
        let skewed = synthetic_model(&config, &skewed).unwrap().to_bytes();
        let (even, skewed) = (
            crate::loader::gguf::GgufFile::from_bytes(even).unwrap(),
            crate::loader::gguf::GgufFile::from_bytes(skewed).unwrap(),
        );
        for spec in config.tensor_specs() {
            let (a, b) = (even.tensor_data(&spec.name), skewed.tensor_data(&spec.name));
            assert_eq!(a == b, spec.role != TensorRole::Router, "{}", spec.name);
        }
        let mut rows = vec![1.0f32; 4 * 3];
        skew_router(&mut rows, 3, 1.0, 7);
        let mut scales: Vec<f32> = rows.chunks(3).map(|r| r[0]).collect();
        scales.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(scales, [1.0, 0.5, 1.0 / 3.0, 0.25]);
    }

    /// The reference's Q4_K_M of a 4-layer qwen35moe: output and attn_v at q6_K, attn_qkv
    /// and the ffn_down family at q6_K in layers 2 and 3 only, the rest q4_K.
    #[test]
    fn q4_k_m_upgrades_what_llama_quantize_does() {
        let config = crate::loader::presets::preset("bench-qwen35moe").unwrap();
        let upgraded: Vec<String> = config
            .tensor_specs()
            .into_iter()
            .filter(|s| !s.role.kept_f32() && super::q4_k_m_upgrade(&config, &s.name))
            .map(|s| s.name)
            .collect();
        assert_eq!(
            upgraded,
            [
                "output.weight",
                "blk.2.attn_qkv.weight",
                "blk.2.ffn_down_exps.weight",
                "blk.2.ffn_down_shexp.weight",
                "blk.3.attn_v.weight",
                "blk.3.ffn_down_exps.weight",
                "blk.3.ffn_down_shexp.weight",
            ]
        );
    }
}
