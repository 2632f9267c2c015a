//! Launchers of `shaders/gdn/`: the Gated DeltaNet layer's conv and delta rule, apart (any
//! number of tokens; a prompt step's rule in chunks where the key heads allow) or as one
//! decode step.

pub mod causal_conv1d;
pub mod conv_delta_rule;
pub mod delta_chunk_state;
pub mod delta_chunk_wy;
pub mod delta_rule;

pub use causal_conv1d::{causal_conv1d, CausalConv1dIo, ConvShape, MAX_CONV_TAPS};
pub use conv_delta_rule::{conv_delta_rule, ConvDeltaRuleIo};
pub use delta_chunk_state::{delta_chunk_state, DeltaChunkStateIo};
pub use delta_chunk_wy::{delta_chunk_wy, DeltaChunkWyIo};
pub use delta_rule::{delta_rule, DeltaRuleIo};
