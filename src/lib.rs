//! qwen-wgpu: Qwen3.5-family language models (`qwen35moe`, `qwen35`, `qwen3moe`) from GGUF
//! files on any desktop GPU through wgpu and WGSL compute shaders.
//!
//! - [`loader`]: GGUF reader and writer, ggml type table, typed model config and presets.
//! - [`model`]: the contract algebra (parameters, FLOPs, memory, roofline) and the CPU reference.
//! - [`error`]: the error enums at the library's boundaries.
//! - [`runtime`]: the GPU side (adapter, features, limits).
//! - [`report`]: what `inspect` shows, as a struct and a table.
//! - [`rng`]: the seeded generator behind every synthetic fixture.

pub mod chat;
pub mod demo;
pub mod error;
pub mod loader;
pub mod model;
pub mod npy;
pub mod report;
pub mod rng;
pub mod runtime;

pub use error::{Error, Result};
