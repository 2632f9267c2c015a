//! Everything read from (or written to) a GGUF file; knows nothing of wgpu.
//!
//! Reading: `gguf` (the file), `names` (every key and tensor name), `config` (the typed
//! configuration, its validation and expected tensors), `quant` (the ggml type table),
//! `dequant` (block structs, CPU dequantization), `tokenizer`. Writing: `gguf_writer` (the
//! encoder), `quantize`, `vocab` (tokenizer metadata) and `synth` (random models of a
//! configuration, built on those three). `presets`: published configurations.

pub mod config;
pub mod dequant;
pub mod gguf;
pub mod gguf_writer;
pub mod names;
pub mod presets;
pub mod quant;
pub mod quantize;
pub mod random_blocks;
pub mod synth;
pub mod tokenizer;
pub mod vocab;

pub use config::{Architecture, LayerKind, ModelConfig};
pub use gguf::GgufFile;
pub use quant::GgmlType;
