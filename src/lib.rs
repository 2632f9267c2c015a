//! qwen-wgpu: Qwen3.5-family language models (`qwen35moe`, `qwen35`, `qwen3moe`) from GGUF
//! files on any desktop GPU through wgpu and WGSL compute shaders.
//!
//! - [`loader`]: GGUF reader and encoder, ggml type table, typed model config, presets,
//!   tokenizer, and the synthetic-model generator.
//! - [`model`]: the contract algebra (parameters, FLOPs, memory, roofline) and the CPU reference.
//! - [`runtime`]: the GPU side: adapter, kernel declarations and pipelines, weights and state in
//!   VRAM, the per-step plans and the generation session.
//! - [`serve`]: the OpenAI-compatible HTTP server: slots, prompt cache, tool calls.
//! - [`chat`]: streaming generation and multi-turn conversations on a session.
//! - [`demo`]: the embedded default model, written on first use.
//! - [`error`]: the error enums at the library's boundaries.
//! - [`report`]: what `inspect` shows, as a struct and a table.
//! - [`npy`]: `.npy` output for logits.
//! - [`rng`]: the seeded generator behind every synthetic fixture.

pub mod chat;
pub mod chat_output;
pub mod demo;
pub mod error;
pub mod loader;
pub mod model;
pub mod npy;
pub mod report;
pub mod rng;
pub mod runtime;
pub mod serve;

pub use error::{Error, Result};
