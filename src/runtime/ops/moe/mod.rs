//! Launchers of `shaders/moe/`: routing, grouping slots by expert, the element-wise ends of
//! the FFN, and a decode token's fused expert kernels (`moe_gate_up`, `moe_down`). The expert matvec and matmul are linear kernels (`ops::linear`).

pub mod moe_combine;
pub mod moe_down;
pub mod moe_gate_up;
pub mod moe_group;
pub mod moe_route;
pub mod swiglu;

pub use moe_combine::{moe_combine, CombineShape, RoutedOutputs, SharedOutput};
pub use moe_down::{moe_down, DownBuffers, SharedDown};
pub use moe_gate_up::{moe_gate_up, ExpertRows, GateUpBuffers, SharedGateUp};
pub use moe_group::{moe_group, MoeGroupIo};
pub use moe_route::{moe_route, MoeRouteIo, RouteShape, MAX_EXPERTS, MAX_EXPERTS_USED};
pub use swiglu::{swiglu, SwigluIo, SwigluShape};

/// `workgroups` of `wg` invocations covering `n` elements, one each.
fn elementwise_workgroups(n: u32, wg: u32) -> u32 {
    n.div_ceil(wg)
}
