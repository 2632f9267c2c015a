//! The integration suite, one binary so that the crate and wgpu link once.

mod batched;
mod chat;
mod cli;
mod common;
mod config;
mod contracts;
mod executor;
mod experts_placement;
mod gguf_reader;
mod gpu;
mod kernels_attention;
mod kernels_fused;
mod kernels_gdn;
mod kernels_linear;
mod kernels_moe;
mod kernels_norm;
mod kernels_sample;
mod parity;
mod pipelined;
mod prompt_cache;
mod quant;
mod reference;
mod server;
mod shaders;
mod tokenizer;
mod validated;
