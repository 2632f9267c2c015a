//! The GPU side: adapter and device, shader assembly and pipelines, VRAM-resident tensors,
//! and the kernel launchers. Knows nothing of GGUF parsing.

pub mod gpu;
pub mod ops;
pub mod params;
pub mod pipeline;
pub mod tensor;

pub use gpu::{AdapterChoice, GpuContext, GpuFeatures};
