//! Everything read from (or written to) a GGUF file; knows nothing of wgpu.

pub mod config;
pub mod dequant;
pub mod gguf;
pub mod names;
pub mod presets;
pub mod quant;
pub mod quantize;
pub mod tokenizer;
pub mod vocab;
pub mod writer;

pub use config::{Architecture, LayerKind, ModelConfig};
pub use gguf::GgufFile;
pub use quant::GgmlType;
