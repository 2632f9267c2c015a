//! What `qwen-wgpu inspect` shows: a model's description and its algebra at a chosen context,
//! batch and bandwidth, as a serialisable struct (`--json`) and a readable table.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::error::Error;
use crate::loader::config::{FfnConfig, ModelConfig};
use crate::loader::gguf::GgufFile;
use crate::loader::quant::GgmlType;
use crate::model::algebra::{
    self, KvDtype, MemoryPlan, RecurrentStateBytes, Roofline, WeightBytes,
};
use crate::model::placement::{ExpertSplit, DEFAULT_LINK_BYTES_PER_S};

/// The knobs of an inspection.
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// Tokens of context per sequence for KV and memory figures.
    pub context: u64,
    /// Sequences decoded together.
    pub batch: u32,
    /// Tokens prefilled at once (sizes the activation buffers).
    pub ubatch: u64,
    pub kv_dtype: KvDtype,
    /// Weight type assumed for a preset (a file's own types are used for a file).
    pub preset_weight_type: GgmlType,
    pub roofline: Option<Roofline>,
    /// The VRAM budget whose expert placement to show (`--gpu-memory`).
    pub gpu_memory: Option<u64>,
    /// Host-to-GPU bytes per second for the placement's prediction.
    pub link_bandwidth: f64,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            context: 4096,
            batch: 1,
            ubatch: 512,
            kv_dtype: KvDtype::F16,
            preset_weight_type: GgmlType::Q4K,
            roofline: None,
            gpu_memory: None,
            link_bandwidth: DEFAULT_LINK_BYTES_PER_S,
        }
    }
}

/// Tensors of one ggml type in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TypeTally {
    pub count: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FileFacts {
    pub path: String,
    pub gguf_version: u32,
    pub file_bytes: u64,
    pub tensor_count: usize,
    pub by_type: BTreeMap<String, TypeTally>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RooflineFacts {
    pub bandwidth_bytes_per_s: f64,
    pub compute_flops_per_s: Option<f64>,
    /// At the decode traffic (k experts per token).
    pub decode_tokens_per_s: f64,
    /// At the contract's bound (every weight every token).
    pub all_weights_tokens_per_s: f64,
}

/// Where a `--gpu-memory` budget puts the routed experts, and what decode then reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlacementFacts {
    pub gpu_memory: u64,
    pub split: ExpertSplit,
    pub experts_resident: u64,
    pub experts_host: u64,
    /// Routed reads that miss VRAM when tokens pick experts evenly (the worst case: the
    /// resident set follows use, and trained routers favour some experts).
    pub even_miss_rate: f64,
    pub host_bytes_per_token: f64,
    pub link_bandwidth_bytes_per_s: f64,
    /// Decode at the roofline's bandwidth with the misses over the link (with `--bandwidth`).
    pub decode_tokens_per_s: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InspectReport {
    pub config: ModelConfig,
    pub schedule: String,
    pub file: Option<FileFacts>,
    /// `general.file_type`-free description of where the weight bytes come from.
    pub weights_source: String,
    pub params_total: u64,
    pub params_active: u64,
    pub context: u64,
    pub batch: u32,
    pub kv_dtype: KvDtype,
    pub kv_bytes_per_token: u64,
    pub kv_bytes_at_context: u64,
    pub recurrent_state_per_sequence: RecurrentStateBytes,
    pub memory: MemoryPlan,
    pub memory_total: f64,
    pub decode_bytes_per_token: f64,
    pub all_weights_bytes_per_token: f64,
    pub flops_per_token: f64,
    pub roofline: Option<RooflineFacts>,
    pub placement: Option<PlacementFacts>,
}

impl InspectReport {
    /// The report of a config, with `file` when it was read from one.
    pub fn build(
        config: &ModelConfig,
        file: Option<(&str, &GgufFile)>,
        opts: &InspectOptions,
    ) -> Result<InspectReport, Error> {
        if opts.context == 0 || opts.batch == 0 || opts.ubatch == 0 {
            return Err(Error::InvalidArgument(
                "context, batch and ubatch must be at least 1".into(),
            ));
        }
        let (weights, weights_source, file_facts) = match file {
            Some((path, f)) => (
                WeightBytes::from_file(config, f),
                "tensor types of the file".to_string(),
                Some(file_facts(path, f)),
            ),
            None => (
                WeightBytes::uniform(config, opts.preset_weight_type),
                format!(
                    "{} assumed for weights, f32 for norms/routers/conv",
                    opts.preset_weight_type
                ),
                None,
            ),
        };
        let params = algebra::param_count(config);
        let traffic = algebra::decode_bytes_per_token(
            config,
            &weights,
            opts.context,
            opts.batch,
            opts.kv_dtype,
        );
        let all_weights = algebra::all_weights_bytes_per_token(&weights);
        let flops = algebra::flops_per_token(config, opts.context);
        let memory = algebra::memory_plan(
            config,
            &weights,
            opts.context,
            opts.batch.into(),
            opts.ubatch,
            opts.kv_dtype,
        );
        let roofline = opts.roofline.map(|r| RooflineFacts {
            bandwidth_bytes_per_s: r.bandwidth,
            compute_flops_per_s: r.compute,
            decode_tokens_per_s: r.tokens_per_second(traffic.total(), flops),
            all_weights_tokens_per_s: r.tokens_per_second(all_weights + traffic.kv, flops),
        });
        let placement = match opts.gpu_memory {
            Some(budget) => {
                let split = ExpertSplit::plan(config, &weights, &memory, Some(budget))?;
                let miss = split.even_miss_rate();
                let decode_tokens_per_s = opts.roofline.map(|r| {
                    split.predicted_tok_per_s(
                        traffic.total(),
                        miss,
                        r.bandwidth,
                        opts.link_bandwidth,
                    )
                });
                Some(PlacementFacts {
                    gpu_memory: budget,
                    experts_resident: split.experts_resident(),
                    experts_host: split.experts_host(),
                    even_miss_rate: miss,
                    host_bytes_per_token: split.host_bytes_per_token(miss),
                    link_bandwidth_bytes_per_s: opts.link_bandwidth,
                    decode_tokens_per_s,
                    split,
                })
            }
            None => None,
        };
        Ok(InspectReport {
            config: config.clone(),
            schedule: config.schedule_string(),
            file: file_facts,
            weights_source,
            params_total: params.total,
            params_active: params.active,
            context: opts.context,
            batch: opts.batch,
            kv_dtype: opts.kv_dtype,
            kv_bytes_per_token: algebra::kv_bytes_per_token(config, opts.kv_dtype),
            kv_bytes_at_context: algebra::kv_total_bytes(config, opts.context, opts.kv_dtype),
            recurrent_state_per_sequence: algebra::recurrent_state_bytes(config),
            memory_total: memory.total(),
            memory,
            decode_bytes_per_token: traffic.total(),
            all_weights_bytes_per_token: all_weights,
            flops_per_token: flops,
            roofline,
            placement,
        })
    }
}

fn file_facts(path: &str, f: &GgufFile) -> FileFacts {
    let mut by_type: BTreeMap<String, TypeTally> = BTreeMap::new();
    for t in f.tensors() {
        let e = by_type
            .entry(t.ggml_type.name().to_string())
            .or_insert(TypeTally { count: 0, bytes: 0 });
        e.count += 1;
        e.bytes += t.n_bytes;
    }
    FileFacts {
        path: path.to_string(),
        gguf_version: f.version(),
        file_bytes: f.file_len(),
        tensor_count: f.tensors().len(),
        by_type,
    }
}

/// `235.09 B`, `22.19 B`, `3.05 M`.
pub fn human_count(n: f64) -> String {
    let units = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")];
    for (scale, unit) in units {
        if n >= scale {
            return format!("{:.2} {unit}", n / scale);
        }
    }
    format!("{n:.0}")
}

/// Binary units: `1.50 GiB`.
pub fn human_bytes(n: f64) -> String {
    let units = [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (scale, unit) in units {
        if n >= scale as f64 {
            return format!("{:.2} {unit}", n / scale as f64);
        }
    }
    format!("{n:.0} B")
}

/// The rows of the `inspect` table, one `key value` line each.
struct Table(String);

impl Table {
    fn row(&mut self, k: &str, v: String) {
        let _ = writeln!(self.0, "  {k:<28} {v}");
    }
}

impl InspectReport {
    /// The file's header and its tensors by type.
    fn file_rows(&self, t: &mut Table) {
        let mut row = |k: &str, v: String| t.row(k, v);
        if let Some(file) = &self.file {
            row("file", file.path.clone());
            row(
                "gguf",
                format!(
                    "v{}, {} tensors, {}",
                    file.gguf_version,
                    file.tensor_count,
                    human_bytes(file.file_bytes as f64)
                ),
            );
            for (ty, tally) in &file.by_type {
                row(
                    &format!("  {ty}"),
                    format!(
                        "{} tensors, {}",
                        tally.count,
                        human_bytes(tally.bytes as f64)
                    ),
                );
            }
        }
    }

    /// Layers, widths, heads, experts and the head.
    fn architecture_rows(&self, t: &mut Table) {
        let c = &self.config;
        let mut row = |k: &str, v: String| t.row(k, v);
        row(
            "layers",
            format!(
                "{} ({} linear, {} attention){}",
                c.layers.len(),
                c.n_linear_layers(),
                c.n_attention_layers(),
                if c.n_nextn > 0 {
                    format!(" + {} MTP", c.n_nextn)
                } else {
                    String::new()
                }
            ),
        );
        row("schedule", self.schedule.clone());
        row("hidden / vocab", format!("{} / {}", c.n_embd, c.n_vocab));
        let a = &c.attention;
        if c.n_attention_layers() > 0 {
            row(
                "attention",
                format!(
                    "{} q / {} kv heads x {}, rotary {} dims (base {}, sections {:?}){}",
                    a.n_head,
                    a.n_head_kv,
                    a.head_dim,
                    a.n_rot,
                    a.rope_base,
                    a.rope_sections,
                    if a.output_gate { ", sigmoid gate" } else { "" }
                ),
            );
        }
        if let Some(g) = &c.gdn {
            row(
                "linear attention",
                format!(
                    "{} k heads x {}, {} v heads x {}, conv {}",
                    g.n_k_heads, g.d_k, g.n_v_heads, g.d_v, g.conv_kernel
                ),
            );
        }
        match &c.ffn {
            FfnConfig::Dense { n_ff } => row("ffn", format!("dense SwiGLU {n_ff}")),
            FfnConfig::Moe(m) => row(
                "ffn",
                format!(
                    "{} experts, {} used, width {}{}",
                    m.n_expert,
                    m.n_expert_used,
                    m.expert_ffn,
                    m.shared_ffn
                        .map(|s| format!(", shared expert {s}"))
                        .unwrap_or_default()
                ),
            ),
        }
        row(
            "lm head",
            if c.tied_embeddings {
                "tied to token_embd"
            } else {
                "output.weight"
            }
            .into(),
        );
        row("context (trained)", c.n_ctx_train.to_string());
    }

    /// Parameters, memory, FLOPs, bytes per token and the roofline.
    fn cost_rows(&self, t: &mut Table) {
        let mut row = |k: &str, v: String| t.row(k, v);
        row(
            "parameters",
            format!(
                "{} total, {} active",
                human_count(self.params_total as f64),
                human_count(self.params_active as f64)
            ),
        );
        row("weights from", self.weights_source.clone());
        let kv = format!("{:?}", self.kv_dtype).to_lowercase();
        row(
            &format!("KV per token ({kv})"),
            human_bytes(self.kv_bytes_per_token as f64),
        );
        row(
            &format!("KV at {} tokens", self.context),
            human_bytes(self.kv_bytes_at_context as f64),
        );
        let rs = &self.recurrent_state_per_sequence;
        row(
            "recurrent state / sequence",
            format!(
                "{} (conv {}, delta {})",
                human_bytes(rs.total() as f64),
                human_bytes(rs.conv as f64),
                human_bytes(rs.delta as f64)
            ),
        );
        let m = &self.memory;
        row(
            &format!("memory (ctx {}, batch {})", self.context, self.batch),
            format!(
                "{} = weights {} + KV {} + state {} + activations {}",
                human_bytes(self.memory_total),
                human_bytes(m.weights),
                human_bytes(m.kv as f64),
                human_bytes(m.recurrent_state as f64),
                human_bytes(m.activations as f64)
            ),
        );
        row("FLOPs / token", human_count(self.flops_per_token));
        row(
            "bytes read / token",
            format!(
                "{} decode (batch {}), {} all weights",
                human_bytes(self.decode_bytes_per_token),
                self.batch,
                human_bytes(self.all_weights_bytes_per_token)
            ),
        );
        if let Some(r) = &self.roofline {
            row(
                "roofline decode",
                format!(
                    "{:.1} tok/s at {:.0} GB/s ({:.1} tok/s if every weight were read)",
                    r.decode_tokens_per_s,
                    r.bandwidth_bytes_per_s / 1e9,
                    r.all_weights_tokens_per_s
                ),
            );
        }
        if let Some(p) = &self.placement {
            row(
                &format!("gpu memory {}", human_bytes(p.gpu_memory as f64)),
                p.split.to_string(),
            );
            row(
                "host reads / token",
                format!(
                    "{} at even routing ({:.1}% of routed reads miss VRAM)",
                    human_bytes(p.host_bytes_per_token),
                    100.0 * p.even_miss_rate
                ),
            );
            if let Some(tps) = p.decode_tokens_per_s {
                row(
                    "predicted decode",
                    format!(
                        "{tps:.1} tok/s with misses over a {:.0} GB/s link (even routing; routers that favour experts hit more)",
                        p.link_bandwidth_bytes_per_s / 1e9
                    ),
                );
            }
        }
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let mut t = Table(String::new());
        t.row("model", format!("{} ({})", c.name, c.arch));
        self.file_rows(&mut t);
        self.architecture_rows(&mut t);
        self.cost_rows(&mut t);
        f.write_str(&t.0)
    }
}

/// Parses a rate with an SI or binary prefix: `1000GB/s`, `3.35 TB/s`, `900GiB/s`,
/// `989TFLOPS`, or a plain number of units per second.
pub fn parse_rate(text: &str, unit: &str) -> Result<f64, Error> {
    let lower = text.trim().to_ascii_lowercase().replace(' ', "");
    let body = lower.strip_suffix("/s").unwrap_or(&lower);
    let body = body
        .strip_suffix(&unit.to_ascii_lowercase())
        .unwrap_or(body);
    let split = body
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.' || ch == 'e' || ch == '-' || ch == '+'))
        .unwrap_or(body.len());
    let (num, prefix) = body.split_at(split);
    let scale = match prefix {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        "ki" => 1024.0,
        "mi" => 1024f64.powi(2),
        "gi" => 1024f64.powi(3),
        "ti" => 1024f64.powi(4),
        _ => f64::NAN,
    };
    let value: f64 = num.parse().unwrap_or(f64::NAN);
    let rate = value * scale;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(Error::InvalidArgument(format!(
            "cannot read '{text}' as a rate in {unit}/s (e.g. 1000G{unit}/s, 900Gi{unit}/s)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_prefixes() {
        assert_eq!(parse_rate("1000GB/s", "B").unwrap(), 1e12);
        assert_eq!(parse_rate("3.35 TB/s", "B").unwrap(), 3.35e12);
        assert_eq!(parse_rate("1GiB/s", "B").unwrap(), 1073741824.0);
        assert_eq!(parse_rate("989TFLOPS", "FLOPS").unwrap(), 989e12);
        assert_eq!(parse_rate("5e9", "B").unwrap(), 5e9);
        assert!(parse_rate("fast", "B").is_err());
        assert!(parse_rate("-3GB/s", "B").is_err());
        assert!(parse_rate("3XB/s", "B").is_err());
    }
}
