//! Launchers of `shaders/sample/`: greedy and top-k sampling and the repetition penalty,
//! all on the GPU so only the 4-byte token id is read back.

pub mod argmax;
pub mod repetition_penalty;
pub mod top_k;

pub use argmax::{argmax_partials_bytes, Argmax, SampleBuffers, ARGMAX_CHUNK};
pub use repetition_penalty::{RepetitionPenalty, MAX_PENALTY_WINDOW};
pub use top_k::{top_k_partials_bytes, TopKSampler, MAX_TOP_K, TOP_K_CHUNK};
