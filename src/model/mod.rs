//! Model math independent of any GPU: the contract algebra and the CPU reference.

pub mod algebra;
pub mod perplexity;
pub mod reference;
