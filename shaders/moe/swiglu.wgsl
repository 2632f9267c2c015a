// The element-wise end of an FFN's gate and up projections, for each slot s (a routed
// expert, the shared expert or a dense FFN's token):
//   h[s][i] = silu(gate[s][i]) * up[s][i]
// Split: one invocation per output element. WG comes from Rust (ops/moe/swiglu.rs).
// Mirrors model::reference::moe::swiglu.

struct Params {
    // slots * width elements.
    n: u32,
    width: u32,
    // Floats per slot in gate_up; gate at 0, up at up_offset within a slot.
    slot_stride: u32,
    up_offset: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [slots, slot_stride] f32 holding gate (at 0) and up (at up_offset)
@group(0) @binding(1) var<storage, read> gate_up: array<f32>;
// [slots, width] f32
@group(0) @binding(2) var<storage, read_write> h: array<f32>;

@compute @workgroup_size(WG)
fn swiglu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= params.n) {
        return;
    }
    let slot = i / params.width;
    let c = i % params.width;
    let g = gate_up[slot * params.slot_stride + c];
    let u = gate_up[slot * params.slot_stride + params.up_offset + c];
    h[i] = g / (1.0 + exp(-g)) * u;
}
