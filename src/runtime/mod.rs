//! The GPU side: adapter and device, and (from the kernels issue on) pipelines, VRAM-resident
//! tensors and caches, and the executor. Knows nothing of GGUF parsing.

pub mod gpu;

pub use gpu::{AdapterChoice, GpuContext, GpuFeatures};
