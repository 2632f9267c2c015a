//! The subcommands of `qwen-wgpu`, one module per group.

pub mod bench;
pub mod evaluate;
pub mod generate;
pub mod inspect;
pub mod model;
pub mod serve;
