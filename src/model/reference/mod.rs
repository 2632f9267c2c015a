//! The CPU reference: short, naive f32 functions named after the math, each commented with
//! the formula it implements. It is the executable specification every shader is held to.

pub mod gdn;
pub mod linear;
