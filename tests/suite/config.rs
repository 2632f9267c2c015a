//! ModelConfig from GGUF metadata: every architecture, both schedule encodings, both expert
//! layouts, MTP blocks, and an error naming the problem for every inconsistency.

use qwen_wgpu::error::ConfigError;
use qwen_wgpu::loader::config::{ExpertStorage, FfnConfig, LayerKind};
use qwen_wgpu::loader::gguf::{MetaArray, MetaValue};
use qwen_wgpu::loader::gguf_writer::GgufWriter;
use qwen_wgpu::loader::names::{arch_key, blk, layer};
use qwen_wgpu::loader::presets::{preset, PRESET_NAMES};
use qwen_wgpu::loader::quantize::encode_floats;
use qwen_wgpu::loader::synth::{synthetic_model, SynthOptions};
use qwen_wgpu::loader::{GgmlType, GgufFile, ModelConfig};

use crate::common::*;

fn load(w: &GgufWriter) -> Result<ModelConfig, ConfigError> {
    let f = GgufFile::from_bytes(w.to_bytes()).expect("the writer produces valid GGUF");
    ModelConfig::from_gguf(&f)
}

fn load_err(w: &GgufWriter) -> String {
    match load(w) {
        Ok(_) => panic!("an inconsistent model was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_tiny_architecture_reads_back_as_its_preset() {
    for name in TINY_PRESETS {
        let config = tiny(name);
        for explicit_schedule in [false, true] {
            let opts = SynthOptions {
                explicit_schedule,
                ..Default::default()
            };
            let w = synthetic_model(&config, &opts).unwrap();
            assert_eq!(
                load(&w).unwrap(),
                config,
                "{name}, explicit schedule {explicit_schedule}"
            );
        }
    }
}

#[test]
fn every_preset_is_valid_and_synthesises_where_small() {
    for name in PRESET_NAMES {
        let c = preset(name).unwrap();
        c.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(preset("qwen9-1t")
        .unwrap_err()
        .to_string()
        .contains("qwen3.5-35b-a3b"));
    // Case and separator insensitive.
    assert_eq!(preset("Qwen3_235B_A22B").unwrap().name, "Qwen3-235B-A22B");
}

#[test]
fn recurrent_layers_flags_override_the_interval() {
    let mut config = tiny("tiny-qwen35moe");
    config.layers = vec![
        LayerKind::Attention,
        LayerKind::Linear,
        LayerKind::Attention,
        LayerKind::Linear,
    ];
    let w = synthetic_model(&config, &SynthOptions::default()).unwrap();
    let read = load(&w).unwrap();
    assert_eq!(read.layers, config.layers);
    assert_eq!(read.schedule_string(), "ALAL");
}

#[test]
fn interval_schedule_matches_llama_cpp() {
    let s = ModelConfig::interval_schedule(8, 4);
    let letters: String = s.iter().map(|l| l.letter()).collect();
    assert_eq!(letters, "LLLALLLA");
    let s = ModelConfig::interval_schedule(5, 2);
    let letters: String = s.iter().map(|l| l.letter()).collect();
    assert_eq!(letters, "LALAL");
}

#[test]
fn fused_gate_up_experts_are_accepted() {
    let config = tiny("tiny-qwen35moe");
    let mut w = synth_writer(&config);
    let FfnConfig::Moe(m) = &config.ffn else {
        unreachable!()
    };
    let (e, fe, x) = (config.n_embd as u64, m.expert_ffn as u64, m.n_expert as u64);
    for i in 0..config.layers.len() {
        w.remove_tensor(&blk(i, layer::FFN_GATE_EXPS));
        w.remove_tensor(&blk(i, layer::FFN_UP_EXPS));
        let values = vec![0.01f32; (e * 2 * fe * x) as usize];
        w.add_tensor(
            &blk(i, layer::FFN_GATE_UP_EXPS),
            &[e, 2 * fe, x],
            GgmlType::F32,
            encode_floats(&values, GgmlType::F32),
        )
        .unwrap();
    }
    let read = load(&w).unwrap();
    assert_eq!(read.moe().unwrap().storage, ExpertStorage::Fused);
    // Same parameters either way.
    assert_eq!(
        qwen_wgpu::model::algebra::param_count(&read).total,
        qwen_wgpu::model::algebra::param_count(&config).total
    );
}

#[test]
fn mtp_blocks_are_described_but_not_in_the_trunk() {
    let config = tiny("tiny-qwen35moe");
    let mut w = synth_writer(&config);
    let arch = "qwen35moe";
    w.set(&arch_key(arch, "block_count"), MetaValue::U32(5));
    w.set(&arch_key(arch, "nextn_predict_layers"), MetaValue::U32(1));
    w.add_tensor(
        &blk(4, "nextn.eh_proj.weight"),
        &[128, 64],
        GgmlType::F32,
        vec![0; 128 * 64 * 4],
    )
    .unwrap();
    let read = load(&w).unwrap();
    assert_eq!(read.layers, config.layers);
    assert_eq!(read.n_nextn, 1);
    assert_eq!(read.block_count(), 5);
}

#[test]
fn per_layer_head_count_kv_array_is_accepted() {
    let config = tiny("tiny-qwen35moe");
    let mut w = synth_writer(&config);
    // Recurrent layers carry 0 KV heads, as hybrid converters write them.
    let kv: Vec<i32> = config
        .layers
        .iter()
        .map(|&l| if l == LayerKind::Attention { 2 } else { 0 })
        .collect();
    w.set(
        &arch_key("qwen35moe", "attention.head_count_kv"),
        MetaValue::Array(MetaArray::I32(kv)),
    );
    assert_eq!(load(&w).unwrap().attention.n_head_kv, 2);

    w.set(
        &arch_key("qwen35moe", "attention.head_count_kv"),
        MetaValue::Array(MetaArray::I32(vec![2, 2])),
    );
    assert!(load_err(&w).contains("one value per block"));
}

#[test]
fn unknown_architecture_and_missing_keys_are_named() {
    let mut w = synth_writer(&tiny("tiny-qwen35moe"));
    w.set("general.architecture", MetaValue::String("llama".into()));
    let e = load_err(&w);
    assert!(e.contains("'llama'") && e.contains("qwen35moe"), "{e}");

    let mut w = synth_writer(&tiny("tiny-qwen35moe"));
    w.remove("qwen35moe.ssm.state_size");
    assert!(load_err(&w).contains("qwen35moe.ssm.state_size"));

    let mut w = synth_writer(&tiny("tiny-qwen35"));
    w.remove("qwen35.feed_forward_length");
    assert!(load_err(&w).contains("qwen35.feed_forward_length"));

    let mut w = synth_writer(&tiny("tiny-qwen3moe"));
    w.set("qwen3moe.embedding_length", MetaValue::String("64".into()));
    let e = load_err(&w);
    assert!(
        e.contains("embedding_length") && e.contains("string"),
        "{e}"
    );

    let mut w = synth_writer(&tiny("tiny-qwen3moe"));
    w.set("qwen3moe.block_count", MetaValue::I32(-3));
    assert!(load_err(&w).contains("-3"));
}

#[test]
fn geometry_violations_are_named() {
    // n_v % n_k != 0 (3 value heads over 2 key heads).
    let mut w = synth_writer(&tiny("tiny-qwen35moe"));
    w.set("qwen35moe.ssm.time_step_rank", MetaValue::U32(3));
    w.set("qwen35moe.ssm.inner_size", MetaValue::U32(48));
    let e = load_err(&w);
    assert!(e.contains("not a multiple of key heads"), "{e}");

    let mut w = synth_writer(&tiny("tiny-qwen3moe"));
    w.set("qwen3moe.attention.head_count_kv", MetaValue::U32(3));
    assert!(load_err(&w).contains("not a multiple of head_count_kv 3"));

    let mut w = synth_writer(&tiny("tiny-qwen35moe"));
    w.set("qwen35moe.rope.dimension_count", MetaValue::U32(32));
    assert!(load_err(&w).contains("at most the head dim 16"));

    let mut w = synth_writer(&tiny("tiny-qwen3moe"));
    w.set("qwen3moe.rope.dimension_count", MetaValue::U32(8));
    assert!(load_err(&w).contains("rotates whole heads"));

    let mut w = synth_writer(&tiny("tiny-qwen3moe"));
    w.set("qwen3moe.expert_used_count", MetaValue::U32(9));
    assert!(load_err(&w).contains("expert_used_count 9"));
}

#[test]
fn missing_or_misshapen_tensors_are_named_with_both_shapes() {
    let mut w = synth_writer(&tiny("tiny-qwen35moe"));
    w.remove_tensor("blk.2.ssm_a");
    assert_eq!(
        load_err(&w),
        "tensor 'blk.2.ssm_a' is required by this architecture but missing from the file"
    );

    let mut w = synth_writer(&tiny("tiny-qwen35moe"));
    w.add_tensor(
        "blk.3.attn_q.weight",
        &[64, 64],
        GgmlType::F32,
        vec![0; 64 * 64 * 4],
    )
    .unwrap();
    let e = load_err(&w);
    assert!(
        e.contains("blk.3.attn_q.weight") && e.contains("[64, 64]") && e.contains("[64, 128]"),
        "{e}"
    );

    // A projection bias the architecture does not have (FALSIFY-KV-004 at load time).
    let mut w = synth_writer(&tiny("tiny-qwen3moe"));
    w.add_tensor("blk.0.attn_q.bias", &[64], GgmlType::F32, vec![0; 256])
        .unwrap();
    assert!(load_err(&w).contains("blk.0.attn_q.bias"));
}

#[test]
fn tied_embeddings_follow_the_absence_of_output_weight() {
    let config = tiny("tiny-qwen35");
    assert!(config.tied_embeddings);
    let f = GgufFile::from_bytes(synth_writer(&config).to_bytes()).unwrap();
    assert!(f.tensor("output.weight").is_none());
    assert!(ModelConfig::from_gguf(&f).unwrap().tied_embeddings);
}
