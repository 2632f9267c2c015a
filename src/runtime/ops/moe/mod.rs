//! Launchers of `shaders/moe/`: routing, grouping slots by expert, and the element-wise
//! ends of the FFN. The expert matvec and matmul are linear kernels (`ops::linear`).

pub mod moe_combine;
pub mod moe_group;
pub mod moe_route;
pub mod swiglu;

pub use moe_combine::{moe_combine, CombineShape, RoutedOutputs, SharedOutput};
pub use moe_group::{moe_group, MoeGroupIo};
pub use moe_route::{moe_route, MoeRouteIo, RouteShape, MAX_EXPERTS, MAX_EXPERTS_USED};
pub use swiglu::{swiglu, SwigluIo, SwigluShape};

/// `workgroups` of `wg` invocations covering `n` elements, one each.
fn elementwise_workgroups(n: u32, wg: u32) -> u32 {
    n.div_ceil(wg)
}
