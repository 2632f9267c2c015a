//! The GPU side: adapter and device, shader assembly and pipelines, VRAM-resident tensors,
//! and the kernel launchers. Knows nothing of GGUF parsing.

// Direct recording where wgpu has a Vulkan backend; elsewhere a stand-in that never opens.
#[cfg(all(
    not(target_arch = "wasm32"),
    any(windows, all(unix, not(target_vendor = "apple")))
))]
pub mod direct;
#[cfg(not(all(
    not(target_arch = "wasm32"),
    any(windows, all(unix, not(target_vendor = "apple")))
)))]
#[path = "direct_none.rs"]
pub mod direct;
pub mod experts;
pub mod gpu;
pub mod graph;
pub mod host_clock;
pub mod kernel;
pub mod ops;
pub mod pipeline;
pub mod scratch;
pub mod session;
pub mod state;
pub mod tensor;
pub mod weights;

pub use gpu::{AdapterChoice, GpuContext, GpuFeatures};
pub use session::{
    DecodeBatch, GpuModel, LoadOptions, Sampling, Session, SessionOptions, DEFAULT_UBATCH,
};
