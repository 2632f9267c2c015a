//! Launchers of `shaders/gdn/`: the Gated DeltaNet layer's conv and delta rule.

pub mod causal_conv1d;
pub mod delta_rule;

pub use causal_conv1d::{causal_conv1d, CausalConv1dIo, ConvShape, MAX_CONV_TAPS};
pub use delta_rule::{delta_rule, DeltaRuleIo};
