//! Model math independent of any GPU: the contract algebra and the CPU reference.

pub mod activations;
pub mod algebra;
pub mod perplexity;
pub mod placement;
pub mod reference;
