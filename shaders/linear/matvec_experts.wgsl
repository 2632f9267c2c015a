// The matvec for the experts tokens were routed to: slot s (token s / k, its (s % k)-th
// expert) multiplies expert ids[s]'s slab with that token's input into y[s * y_stride..];
// the ids are read on the GPU, never by the CPU. With n_tokens * k slots it is the prefill
// form too.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x, slot wg.z) owns ROWS consecutive rows
// of the slot's expert (linear/matvec_rows.wgsl). Mirrors model::reference::linear::matvec
// applied per routed expert.

@group(0) @binding(0) var<storage, read> params: Params;
// [n_experts, rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [slots / x_group, x_stride] f32, read four floats at a time (x_stride is a multiple of 4)
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
// [slots, y_stride] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// [slots] u32: the routed experts
@group(0) @binding(4) var<storage, read> ids: array<u32>;

@compute @workgroup_size(WG)
fn matvec_experts(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let slot = wg.z;
    let e = ids[slot];
    // Experts outside this buffer are another piece's dispatch.
    if (e < params.first_expert || e >= params.first_expert + params.n_experts) {
        return;
    }
    let slab = (e - params.first_expert) * params.rows * params.row_bytes;
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    rows_dot(
        first,
        lid,
        params.weight_offset + slab,
        params.x_offset + (slot / params.x_group) * params.x_stride,
        params.y_offset + slot * params.y_stride,
    );
}
