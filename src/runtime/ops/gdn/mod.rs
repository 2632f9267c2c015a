//! Launchers of `shaders/gdn/`: the Gated DeltaNet layer's conv and delta rule, apart (any
//! number of tokens) or as one decode step.

pub mod causal_conv1d;
pub mod conv_delta_rule;
pub mod delta_rule;

pub use causal_conv1d::{causal_conv1d, CausalConv1dIo, ConvShape, MAX_CONV_TAPS};
pub use conv_delta_rule::{conv_delta_rule, ConvDeltaRuleIo};
pub use delta_rule::{delta_rule, DeltaRuleIo};
