//! Which routed experts a VRAM budget keeps resident (`--gpu-memory`).
//!
//! Everything every token reads goes to VRAM first: the weights other than the routed
//! experts (attention, GDN, norms, routers, shared experts, the head), the KV cache, the
//! recurrent state and the activations. What is left of the budget holds the same number of
//! routed experts in each MoE layer; the rest stay in host memory, which the GPU reads over
//! the bus (`runtime::experts`). A token reads `k` experts a layer, so a resident set that
//! follows measured use serves most reads from VRAM.

use crate::loader::config::{FfnConfig, ModelConfig, TensorRole};
use crate::model::algebra::{MemoryPlan, WeightBytes};

/// PCIe 4.0 x16's practical host-to-device rate, the link `inspect` assumes unless told.
pub const DEFAULT_LINK_BYTES_PER_S: f64 = 25e9;

/// One MoE layer's routed experts.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ExpertLayer {
    pub layer: usize,
    pub n_expert: u32,
    pub n_expert_used: u32,
    /// Bytes of one expert across the layer's expert tensors (gate, up, down).
    pub expert_bytes: f64,
}

/// How a budget splits the routed experts between VRAM and host memory.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExpertSplit {
    /// VRAM bytes besides the routed experts: the other weights and the memory plan's KV
    /// cache, state and activations.
    pub always_resident: f64,
    pub layers: Vec<ExpertLayer>,
    /// Experts of each MoE layer kept in VRAM (the same number in every layer).
    pub resident: u32,
}

/// Why a budget cannot run a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlacementError {
    #[error("--gpu-memory {budget_gib:.2} GiB is below the {need_gib:.2} GiB that every token needs in VRAM (weights other than routed experts {weights_gib:.2}, KV cache, state and activations {rest_gib:.2}); raise it, or lower --ctx")]
    BelowAlwaysResident {
        budget_gib: f64,
        need_gib: f64,
        weights_gib: f64,
        rest_gib: f64,
    },
    #[error("--gpu-memory {budget_gib:.2} GiB is below the {need_gib:.2} GiB this model needs, and it has no routed experts that could stay in host memory")]
    NoExperts { budget_gib: f64, need_gib: f64 },
}

const GIB: f64 = (1u64 << 30) as f64;

impl ExpertSplit {
    /// The split of `config`'s experts (tensor bytes in `weights`) when VRAM may hold
    /// `budget` bytes in all, `memory` (the sessions' plan, weights included) among them.
    /// No budget keeps every expert resident.
    pub fn plan(
        config: &ModelConfig,
        weights: &WeightBytes,
        memory: &MemoryPlan,
        budget: Option<u64>,
    ) -> Result<ExpertSplit, PlacementError> {
        let layers = expert_layers(config, weights);
        let per_set: f64 = layers.iter().map(|l| l.expert_bytes).sum();
        let experts_total: f64 = layers
            .iter()
            .map(|l| l.expert_bytes * l.n_expert as f64)
            .sum();
        let always_resident = memory.total() - experts_total;
        let n_expert = layers.iter().map(|l| l.n_expert).min().unwrap_or(0);
        let resident = match budget {
            None => n_expert,
            Some(b) if layers.is_empty() => {
                if b as f64 >= memory.total() {
                    0
                } else {
                    return Err(PlacementError::NoExperts {
                        budget_gib: b as f64 / GIB,
                        need_gib: memory.total() / GIB,
                    });
                }
            }
            Some(b) => {
                let spare = b as f64 - always_resident;
                if spare < 0.0 {
                    let weights_gib = (memory.weights - experts_total) / GIB;
                    return Err(PlacementError::BelowAlwaysResident {
                        budget_gib: b as f64 / GIB,
                        need_gib: always_resident / GIB,
                        weights_gib,
                        rest_gib: always_resident / GIB - weights_gib,
                    });
                }
                ((spare / per_set).floor() as u64).min(n_expert as u64) as u32
            }
        };
        Ok(ExpertSplit {
            always_resident,
            layers,
            resident,
        })
    }

    /// Whether every routed expert sits in VRAM (or the model has none).
    pub fn all_resident(&self) -> bool {
        self.layers.iter().all(|l| self.resident >= l.n_expert)
    }

    /// Routed experts in VRAM and in host memory, over all layers.
    pub fn experts_resident(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| self.resident.min(l.n_expert) as u64)
            .sum()
    }

    pub fn experts_host(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.n_expert.saturating_sub(self.resident) as u64)
            .sum()
    }

    /// VRAM the split takes: the always-resident bytes and the resident experts.
    pub fn vram_bytes(&self) -> f64 {
        self.always_resident + self.resident_expert_bytes()
    }

    pub fn resident_expert_bytes(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| l.expert_bytes * self.resident.min(l.n_expert) as f64)
            .sum()
    }

    /// Host memory the GPU reads experts from.
    pub fn host_bytes(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| l.expert_bytes * l.n_expert.saturating_sub(self.resident) as f64)
            .sum()
    }

    /// The share of routed reads that miss VRAM when tokens pick experts evenly: the bound
    /// for routing with no favourites (trained routers favour some, and the resident set
    /// follows them).
    pub fn even_miss_rate(&self) -> f64 {
        let (mut uses, mut misses) = (0.0, 0.0);
        for l in &self.layers {
            let k = l.n_expert_used as f64;
            uses += k;
            misses += k * l.n_expert.saturating_sub(self.resident) as f64 / l.n_expert as f64;
        }
        if uses > 0.0 {
            misses / uses
        } else {
            0.0
        }
    }

    /// Bytes one decode token reads from host memory when `miss_rate` of its routed reads
    /// miss VRAM.
    pub fn host_bytes_per_token(&self, miss_rate: f64) -> f64 {
        self.layers
            .iter()
            .map(|l| l.n_expert_used as f64 * miss_rate * l.expert_bytes)
            .sum()
    }

    /// Predicted decode tokens per second: `vram_bytes_per_token` (everything a token
    /// reads, experts included) less the missed expert bytes at `vram_bw`, plus those at
    /// `link_bw` (bytes per second), the two in series as one step's kernels are.
    pub fn predicted_tok_per_s(
        &self,
        vram_bytes_per_token: f64,
        miss_rate: f64,
        vram_bw: f64,
        link_bw: f64,
    ) -> f64 {
        let host = self.host_bytes_per_token(miss_rate);
        let seconds = (vram_bytes_per_token - host).max(0.0) / vram_bw + host / link_bw;
        1.0 / seconds
    }
}

/// "routed experts: R of N a layer in VRAM (X GiB), the rest in host memory (Y GiB)".
impl std::fmt::Display for ExpertSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.layers.iter().map(|l| l.n_expert).max().unwrap_or(0);
        let resident = self.resident.min(n);
        write!(
            f,
            "routed experts: {resident} of {n} a layer in VRAM ({:.2} GiB)",
            self.resident_expert_bytes() / GIB
        )?;
        if resident < n {
            write!(
                f,
                ", {} in host memory ({:.2} GiB)",
                n - resident,
                self.host_bytes() / GIB
            )?;
        }
        Ok(())
    }
}

/// Each MoE layer's experts and the bytes of one of them.
fn expert_layers(config: &ModelConfig, weights: &WeightBytes) -> Vec<ExpertLayer> {
    let FfnConfig::Moe(m) = &config.ffn else {
        return Vec::new();
    };
    (0..config.layers.len())
        .map(|i| {
            let prefix = format!("blk.{i}.");
            let bytes: f64 = weights
                .tensors
                .iter()
                .filter(|(s, _)| s.role == TensorRole::RoutedExperts && s.name.starts_with(&prefix))
                .map(|(_, b)| b)
                .sum();
            ExpertLayer {
                layer: i,
                n_expert: m.n_expert,
                n_expert_used: m.n_expert_used,
                expert_bytes: bytes / m.n_expert.max(1) as f64,
            }
        })
        .collect()
}

/// Parses a size such as `12GiB`, `16GB`, `800MiB`, `1.5G` or a byte count.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 12GiB, 16GB, 800MiB)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => GIB,
        "gb" => 1e9,
        "t" | "tib" => GIB * 1024.0,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "'{text}': unknown unit '{other}' (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ))
        }
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::presets::preset;
    use crate::loader::quant::GgmlType;
    use crate::model::algebra::{memory_plan, KvDtype};

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_size("12GiB"), Ok(12 << 30));
        assert_eq!(parse_size("16GB"), Ok(16_000_000_000));
        assert_eq!(parse_size("800 MiB"), Ok(800 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("GiB").is_err());
    }

    /// Qwen3.5-35B-A3B at q4_K in 12 GiB: everything but the routed experts first, then the
    /// same number of experts in each of the 40 layers, as many as fit; the split adds up.
    #[test]
    fn a_budget_keeps_as_many_experts_a_layer_as_fit_after_the_rest() {
        let config = preset("qwen3.5-35b-a3b").unwrap();
        let weights = WeightBytes::uniform(&config, GgmlType::Q4K);
        let plan = memory_plan(&config, &weights, 4096, 1, 512, KvDtype::F16);
        let all = ExpertSplit::plan(&config, &weights, &plan, None).unwrap();
        assert!(all.all_resident() && all.experts_host() == 0);
        assert!((all.vram_bytes() - plan.total()).abs() < 1.0);
        let budget = 12u64 << 30;
        let split = ExpertSplit::plan(&config, &weights, &plan, Some(budget)).unwrap();
        assert_eq!(split.layers.len(), 40);
        let per_set: f64 = split.layers.iter().map(|l| l.expert_bytes).sum();
        assert!(split.vram_bytes() <= budget as f64);
        assert!(
            split.vram_bytes() + per_set > budget as f64,
            "one more set would fit"
        );
        assert_eq!(split.experts_resident() + split.experts_host(), 40 * 256);
        let total = split.resident_expert_bytes() + split.host_bytes();
        assert!((split.always_resident + total - plan.total()).abs() < 1.0);
        // Even routing misses the host share; more misses, slower decode.
        let miss = split.even_miss_rate();
        assert!((miss - (256 - split.resident) as f64 / 256.0).abs() < 1e-12);
        let fast = split.predicted_tok_per_s(1e9, 0.0, 1e12, 25e9);
        let slow = split.predicted_tok_per_s(1e9, miss, 1e12, 25e9);
        assert!((fast - 1000.0).abs() < 1e-6 && slow < fast);
        // Below what every token reads: refused with the numbers.
        let err = ExpertSplit::plan(&config, &weights, &plan, Some(1 << 30)).unwrap_err();
        assert!(
            err.to_string().contains("every token needs in VRAM"),
            "{err}"
        );
    }
}
