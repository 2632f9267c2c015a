//! The CPU reference: short, naive f32 functions named after the math, each commented with
//! the formula it implements, and the whole forward pass built from them. It is the
//! executable specification every shader is held to.

pub mod attention;
pub mod forward;
pub mod gdn;
pub mod linear;
pub mod moe;
pub mod norm;
pub mod rope;
pub mod sample;

pub use forward::{ReferenceModel, ReferenceState};
