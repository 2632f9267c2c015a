//! One test per FALSIFY-* row of the seed contracts (hybrid-layer-dispatch-v1,
//! kv-cache-sizing-v1, qwen3moe-e2e-verification-v1), and each Kani harness as an exhaustive
//! test over the harness's bound. HL-006 and KV-006 compare the GPU with the CPU and live
//! with the GPU executor.

use qwen_wgpu::loader::config::{LayerKind, TensorRole};
use qwen_wgpu::loader::presets::{preset, PRESET_NAMES};
use qwen_wgpu::loader::{GgmlType, GgufFile, ModelConfig};
use qwen_wgpu::model::algebra::{self, KvDtype, Roofline, WeightBytes};
use qwen_wgpu::model::reference::gdn::causal_conv1d;
use qwen_wgpu::model::reference::linear::{matmul, matvec, transpose};
use qwen_wgpu::rng::SplitMix64;

use crate::common::*;

fn random(n: usize, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| rng.symmetric_f32()).collect()
}

/// The checkpoints' own configurations, not the tiny/small test models.
fn is_published(c: &ModelConfig) -> bool {
    !c.name.starts_with("tiny-") && !c.name.starts_with("small-")
}

fn all_presets() -> Vec<ModelConfig> {
    PRESET_NAMES.iter().map(|n| preset(n).unwrap()).collect()
}

// ---------------------------------------------------------------- hybrid-layer-dispatch-v1

#[test]
fn falsify_hl_001_exhaustive_partition() {
    for c in all_presets() {
        assert_eq!(c.layers.len() as u32 + c.n_nextn, c.block_count());
        let (attn, lin) = (c.n_attention_layers(), c.n_linear_layers());
        assert_eq!(attn + lin, c.layers.len(), "{}", c.name);
        for i in 0..c.layers.len() {
            // Exactly one kind, the same on every call (a pure function of i).
            let kind = c.dispatch(i).unwrap();
            assert_eq!(c.dispatch(i), Some(kind));
            if c.arch.is_hybrid() && is_published(&c) {
                let expect = if (i + 1) % 4 == 0 {
                    LayerKind::Attention
                } else {
                    LayerKind::Linear
                };
                assert_eq!(kind, expect, "{} layer {i}", c.name);
            }
        }
        assert_eq!(c.dispatch(c.layers.len()), None);
    }
    let c = preset("qwen3.5-35b-a3b").unwrap();
    assert_eq!((c.n_linear_layers(), c.n_attention_layers()), (30, 10));
}

#[test]
fn falsify_hl_002_matrix_associativity() {
    // (V K^T) Q == V (K^T Q) for the linear-attention readout shapes, within f32 rounding.
    let mut rng = SplitMix64::new(2);
    for (t, d_k, d_v) in [(1, 4, 4), (7, 16, 8), (33, 128, 128)] {
        let v = random(d_v * t, &mut rng); // [d_v, t]
        let k = random(d_k * t, &mut rng); // [d_k, t]
        let q = random(d_k, &mut rng); // [d_k, 1]
        let kt = transpose(&k, d_k, t); // [t, d_k]
        let left = matmul(&matmul(&v, &kt, d_v, t, d_k), &q, d_v, d_k, 1);
        let right = matmul(&v, &matmul(&kt, &q, t, d_k, 1), d_v, t, 1);
        let scale: f32 = (t * d_k) as f32;
        for (a, b) in left.iter().zip(&right) {
            assert!(
                (a - b).abs() <= 1e-5 * scale.sqrt() * (1.0 + a.abs()),
                "t={t} d_k={d_k}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn falsify_hl_003_head_grouping_exact() {
    for c in all_presets() {
        if let Some(g) = &c.gdn {
            assert_eq!(g.n_v_heads % g.n_k_heads, 0, "{}", c.name);
            // linear_shapes: K_dim = n_k d_k, V_dim = n_v d_v, and they may differ.
            assert_eq!(g.key_dim(), g.n_k_heads as u64 * g.d_k as u64);
            assert_eq!(g.value_dim(), g.n_v_heads as u64 * g.d_v as u64);
        }
    }
    let c = preset("qwen3.5-35b-a3b").unwrap();
    let g = c.gdn.as_ref().unwrap();
    assert_ne!(g.key_dim(), g.value_dim());
    // A config that breaks the grouping is rejected (the GGUF path is in config.rs).
    let mut bad = c.clone();
    bad.gdn.as_mut().unwrap().n_v_heads = 24 + 1;
    assert!(bad.validate().is_err());
}

#[test]
fn falsify_hl_004_residual_shape_preservation() {
    for c in all_presets() {
        for s in c.tensor_specs() {
            let out_proj = ["attn_output.weight", "ssm_out.weight", "ffn_down.weight"]
                .iter()
                .chain(&["ffn_down_exps.weight", "ffn_down_shexp.weight"])
                .any(|suffix| s.name.ends_with(suffix));
            if out_proj {
                assert_eq!(s.dims[1], c.n_embd as u64, "{}: {}", c.name, s.name);
            }
        }
    }
}

#[test]
fn falsify_hl_005_conv1d_causal() {
    let mut rng = SplitMix64::new(5);
    let (c, k) = (6, 4);
    let w = random(c * k, &mut rng);
    for t in [1, 3, 4, 17] {
        let x = random(t * c, &mut rng);
        let mut state = vec![0.0; (k - 1) * c];
        let y = causal_conv1d(&x, &w, &mut state, c, k);
        assert_eq!(y.len(), x.len(), "output length equals input length");
        // Changing token j leaves every output before j untouched.
        for j in 0..t {
            let mut x2 = x.clone();
            x2[j * c] += 1.0;
            let y2 = causal_conv1d(&x2, &w, &mut vec![0.0; (k - 1) * c], c, k);
            assert_eq!(
                &y[..j * c],
                &y2[..j * c],
                "t={t}: output before {j} changed"
            );
            assert_ne!(y[j * c], y2[j * c]);
        }
    }
}

// ---------------------------------------------------------------- kv-cache-sizing-v1

#[test]
fn falsify_kv_001_per_token_kv_bytes() {
    assert_eq!(
        algebra::kv_bytes_per_token_per_layer(4, 128, KvDtype::F16),
        2048
    );
    assert_eq!(
        algebra::kv_bytes_per_token_per_layer(4, 128, KvDtype::F32),
        4096
    );
    let c = preset("qwen3-235b-a22b").unwrap();
    assert_eq!(algebra::kv_bytes_per_token(&c, KvDtype::F16), 94 * 2048);
    let c = preset("qwen3.5-35b-a3b").unwrap();
    assert_eq!(
        algebra::kv_bytes_per_token(&c, KvDtype::F16),
        10 * 2 * 2 * 256 * 2
    );
}

#[test]
fn falsify_kv_002_kv_total_monotonic() {
    for c in all_presets() {
        let mut prev = 0;
        for s in [1u64, 2, 100, 4096, 262_144] {
            let total = algebra::kv_total_bytes(&c, s, KvDtype::F16);
            assert!(total > prev, "{}: S={s}", c.name);
            // Linear: exactly S times the per-token figure.
            assert_eq!(total, s * algebra::kv_bytes_per_token(&c, KvDtype::F16));
            prev = total;
        }
    }
}

#[test]
fn falsify_kv_003_hybrid_accounting() {
    for c in all_presets() {
        let kv_layers = algebra::kv_layers(&c);
        assert_eq!(kv_layers as usize, c.n_attention_layers());
        assert!(kv_layers as usize <= c.layers.len());
        if c.arch.is_hybrid() {
            // Turning every layer into attention multiplies the KV by layers / attention
            // layers: linear layers add nothing (4x for the published 1-in-4 schedule).
            let mut dense = c.clone();
            dense.layers = vec![LayerKind::Attention; c.layers.len()];
            assert_eq!(
                algebra::kv_bytes_per_token(&dense, KvDtype::F16) * kv_layers,
                c.layers.len() as u64 * algebra::kv_bytes_per_token(&c, KvDtype::F16)
            );
            if is_published(&c) {
                assert_eq!(kv_layers as usize, c.layers.len() / 4, "{}", c.name);
            }
        }
    }
}

#[test]
fn falsify_kv_004_bias_absence() {
    for c in all_presets() {
        let biases: Vec<_> = c
            .tensor_specs()
            .into_iter()
            .filter(|s| qwen_wgpu::loader::config::is_projection_bias(&s.name))
            .collect();
        assert!(biases.is_empty(), "{}: {biases:?}", c.name);
    }
    for name in TINY_PRESETS {
        let f = GgufFile::from_bytes(synth_writer(&tiny(name)).to_bytes()).unwrap();
        let n = f
            .tensors()
            .iter()
            .filter(|t| qwen_wgpu::loader::config::is_projection_bias(&t.name))
            .count();
        assert_eq!(n, 0, "{name}");
    }
}

#[test]
fn falsify_kv_005_zero_input_identity() {
    let mut rng = SplitMix64::new(7);
    for (rows, cols) in [(1, 1), (5, 64), (257, 33)] {
        let w = random(rows * cols, &mut rng);
        let y = matvec(&w, &vec![0.0; cols], rows, cols);
        assert!(y.iter().all(|&v| v == 0.0), "{rows}x{cols}");
    }
}

// ---------------------------------------------------------------- qwen3moe-e2e-verification-v1

#[test]
fn falsify_qm3e_001_total_params() {
    let p = algebra::param_count(&preset("qwen3-235b-a22b").unwrap());
    assert!((234e9..=236e9).contains(&(p.total as f64)), "{}", p.total);
    assert!((p.total as f64 - 235.1e9).abs() < 0.05e9, "{}", p.total);
}

#[test]
fn falsify_qm3e_002_active_params() {
    let c = preset("qwen3-235b-a22b").unwrap();
    let p = algebra::param_count(&c);
    assert!((22e9..=23e9).contains(&(p.active as f64)), "{}", p.active);
    let ratio = p.active as f64 / p.total as f64;
    assert!((0.09..0.1).contains(&ratio), "active/total = {ratio}");
    // Per-layer active MoE: 8 * 3 * 4096 * 1536.
    assert_eq!(8 * 3 * 4096 * 1536, 150_994_944);
}

#[test]
fn falsify_qm3e_003_flops_per_token() {
    for c in all_presets() {
        let a = algebra::param_count(&c).active as f64;
        let f0 = algebra::flops_per_token(&c, 0);
        let embd = c.n_embd as f64 * c.n_vocab as f64;
        // The recurrence touches each d_k x d_v state element a few times per token: bound
        // it by 8 FLOPs per element (it matters only in the 4-layer bench model).
        let recurrence = c.gdn.as_ref().map_or(0.0, |g| {
            8.0 * (g.n_v_heads * g.d_k * g.d_v) as f64 * c.n_linear_layers() as f64
        });
        // 2A, less the embedding lookup and the norms, plus the GDN recurrence.
        assert!(
            f0 <= 2.0 * a * 1.01 + 2.0 * embd + recurrence,
            "{}: {f0} vs 2A = {}",
            c.name,
            2.0 * a
        );
        assert!(
            f0 >= 2.0 * (a - embd) * 0.99,
            "{}: {f0} vs 2A = {}",
            c.name,
            2.0 * a
        );
        // The attention term is O(seq_len * d * L) and linear in the context.
        let f1 = algebra::flops_per_token(&c, 1000);
        let f2 = algebra::flops_per_token(&c, 2000);
        let a_cfg = &c.attention;
        let bound = 4.0 * 1000.0 * (a_cfg.n_head * a_cfg.head_dim) as f64 * c.layers.len() as f64;
        assert!(f1 - f0 <= bound * 1.0001 && f1 > f0, "{}", c.name);
        assert!(((f2 - f0) - 2.0 * (f1 - f0)).abs() < 1e-6 * f2);
    }
}

#[test]
fn falsify_qm3e_004_memory_ordering() {
    for c in all_presets() {
        let m = |ty| WeightBytes::uniform(&c, ty).main();
        let (q4k, q6k, f16, f32) = (
            m(GgmlType::Q4K),
            m(GgmlType::Q6K),
            m(GgmlType::F16),
            m(GgmlType::F32),
        );
        assert!(
            q4k < q6k && q6k < f16 && f16 < f32,
            "{}: {q4k} {q6k} {f16} {f32}",
            c.name
        );
    }
}

#[test]
fn falsify_qm3e_005_throughput_roofline() {
    let c = preset("qwen3-235b-a22b").unwrap();
    let w = WeightBytes::uniform(&c, GgmlType::Q4K);
    let bytes = algebra::decode_bytes_per_token(&c, &w, 4096, 1, KvDtype::F16).total();
    let flops = algebra::flops_per_token(&c, 4096);
    let mut prev = 0.0;
    for bw in [1e11, 5e11, 1e12, 3.35e12] {
        let r = Roofline {
            bandwidth: bw,
            compute: Some(1e15),
        };
        let tps = r.tokens_per_second(bytes, flops);
        assert!(tps <= bw / bytes * (1.0 + 1e-12));
        assert!(tps <= 1e15 / flops * (1.0 + 1e-12));
        assert!(tps >= prev, "monotonic in bandwidth");
        prev = tps;
    }
    // Compute-bound when bandwidth is unlimited.
    let r = Roofline {
        bandwidth: f64::INFINITY,
        compute: Some(1e12),
    };
    assert_eq!(r.tokens_per_second(bytes, flops), 1e12 / flops);
    // Batch 1 reads k of n experts, far less than the contract's all-weights bound.
    assert!(bytes < algebra::all_weights_bytes_per_token(&w) / 5.0);
}

#[test]
fn falsify_qm3e_006_compositional_shape() {
    for c in all_presets().into_iter().filter(|c| c.layers.len() < 100) {
        let steps = algebra::forward_shapes(&c, 7).unwrap();
        for s in &steps[1..steps.len() - 1] {
            assert_eq!(s.shape, [7, c.n_embd as u64], "{}: {}", c.name, s.what);
        }
    }
    // A block that breaks the shape is caught: block 1's expert down projection emits 63
    // values instead of the 64-wide residual stream.
    let c = tiny("tiny-qwen3moe");
    let mut specs = c.tensor_specs();
    let down = specs
        .iter_mut()
        .find(|s| s.name == "blk.1.ffn_down_exps.weight")
        .unwrap();
    down.dims[1] -= 1;
    let e = algebra::forward_shapes_of(&c, &specs, 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("block 1") && e.contains("[3, 63]"), "{e}");
    // And a mixer whose input width is wrong.
    let mut specs = c.tensor_specs();
    specs
        .iter_mut()
        .find(|s| s.name == "blk.2.attn_q.weight")
        .unwrap()
        .dims[0] = 65;
    let e = algebra::forward_shapes_of(&c, &specs, 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("blk.2.attn_q.weight"), "{e}");
}

#[test]
fn falsify_qm3e_007_end_to_end_shape() {
    let c = preset("qwen3-235b-a22b").unwrap();
    let steps = algebra::forward_shapes(&c, 13).unwrap();
    assert_eq!(steps.first().unwrap().shape, [13, 4096]);
    assert_eq!(steps.last().unwrap().shape, [13, 151_936]);
    assert_eq!(steps.len(), 94 + 2);
}

// ---------------------------------------------------------------- Kani harnesses, exhaustively

/// KANI-HL-001 (HL-INV-001, bound 8): every schedule of up to 8 layers, from every interval
/// and from every recurrent-flag pattern, is an exhaustive partition.
#[test]
fn kani_hl_001_exhaustive_partition_bound_8() {
    for n in 1..=8usize {
        for interval in 1..=8u32 {
            let s = ModelConfig::interval_schedule(n, interval);
            assert_eq!(s.len(), n);
            for (i, kind) in s.iter().enumerate() {
                let attention = (i as u32 + 1) % interval == 0;
                assert_eq!(*kind == LayerKind::Attention, attention);
            }
        }
        for mask in 0..(1u32 << n) {
            let mut c = tiny("tiny-qwen35moe");
            c.layers = (0..n)
                .map(|i| {
                    if mask >> i & 1 == 1 {
                        LayerKind::Linear
                    } else {
                        LayerKind::Attention
                    }
                })
                .collect();
            assert_eq!(c.n_linear_layers(), mask.count_ones() as usize);
            assert_eq!(c.n_linear_layers() + c.n_attention_layers(), n);
        }
    }
}

/// KANI-HL-002 (HL-INV-005, bound 16): output length equals input length for every
/// sequence length and kernel size up to 16.
#[test]
fn kani_hl_002_conv1d_length_bound_16() {
    for k in 1..=16usize {
        for t in 0..=16usize {
            let c = 2;
            let x = vec![1.0; t * c];
            let w = vec![1.0; c * k];
            let mut state = vec![0.0; (k - 1) * c];
            let y = causal_conv1d(&x, &w, &mut state, c, k);
            assert_eq!(y.len(), t * c);
            // With ones everywhere, out[t] counts the real inputs in its window.
            for (tok, pair) in y.chunks(c).enumerate() {
                assert_eq!(pair[0], (tok + 1).min(k) as f32);
            }
        }
    }
}

/// KANI-KV-001 (KV-INV-001, bound 4): the per-token formula for every n_kv, d_k <= 4 and both dtypes.
#[test]
fn kani_kv_001_per_token_bytes_bound_4() {
    for n_kv in 1..=4u64 {
        for d_k in 1..=4u64 {
            for (dtype, bpe) in [(KvDtype::F16, 2), (KvDtype::F32, 4)] {
                assert_eq!(
                    algebra::kv_bytes_per_token_per_layer(n_kv, d_k, dtype),
                    2 * n_kv * d_k * bpe
                );
            }
        }
    }
}

/// KANI-QM3E-001 (QM3E-INV-001, bound 1): the contract's closed form and the tensor-sum agree
/// exactly for the one configuration it names.
#[test]
fn kani_qm3e_001_total_params_closed_form() {
    let c = preset("qwen3-235b-a22b").unwrap();
    let (v, d, l, n, f): (u64, u64, u64, u64, u64) = (151_936, 4096, 94, 128, 1536);
    let d_attn = d * 64 * 128 + 2 * d * 4 * 128 + 64 * 128 * d;
    let d_router = d * n;
    let d_expert = 3 * d * f;
    let d_norm = 2 * d + 2 * 128;
    let p = v * d + l * (d_attn + d_router + n * d_expert + d_norm) + d + v * d;
    let a = v * d + l * (d_attn + d_router + 8 * d_expert + d_norm) + d + v * d;
    let count = algebra::param_count(&c);
    assert_eq!(count.total, p);
    assert_eq!(count.active, a);
    assert_eq!(count.by_role["RoutedExperts"], l * n * d_expert);
    assert_eq!(
        count
            .by_role
            .get(&format!("{:?}", TensorRole::SharedExpert)),
        None
    );
}

/// KANI-QM3E-002 (QM3E-ORD-001, bound 4): Q4K < Q6K < F16 < F32 for every tensor of up to
/// 4 x 4 x 4 elements, by the bytes-per-weight formula.
#[test]
fn kani_qm3e_002_memory_ordering_bound_4() {
    for a in 1..=4u64 {
        for b in 1..=4u64 {
            for c in 1..=4u64 {
                let n = (a * b * c) as f64;
                let bytes = |ty: GgmlType| n * ty.bits_per_weight() / 8.0;
                assert!(bytes(GgmlType::Q4K) < bytes(GgmlType::Q6K));
                assert!(bytes(GgmlType::Q6K) < bytes(GgmlType::F16));
                assert!(bytes(GgmlType::F16) < bytes(GgmlType::F32));
            }
        }
    }
}
