// dst[dst_offset + i] = src[src_offset + i] for i < n: one row moved between a step's
// buffers inside a compute pass (a batched decode step hands each sequence its row of the
// projections and takes its attention or delta-rule output back).
// Split: one invocation per float. WG comes from Rust (ops/copy_floats.rs).

struct Params {
    n: u32,
    src_offset: u32,
    dst_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [src_offset + n] f32
@group(0) @binding(1) var<storage, read> src: array<f32>;
// [dst_offset + n] f32
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn copy_floats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i < params.n) {
        dst[params.dst_offset + i] = src[params.src_offset + i];
    }
}
