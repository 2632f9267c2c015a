// The matvec for the experts tokens were routed to: slot s (token s / k, its (s % k)-th
// expert) multiplies expert ids[s]'s slab with that token's input into y[s * y_stride..];
// the ids are read on the GPU, never by the CPU. With n_tokens * k slots it is the prefill
// form too.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x, slot wg.z) owns ROWS consecutive rows
// of the slot's expert, in groups of RPI rows an invocation (linear/rows_dots/: one on a
// GPU, lanes along K; several sharing each x load on a CPU device). Mirrors model::reference::linear::matvec
// applied per routed expert.

struct Params {
    rows: u32,
    // 32-element units per row (cols / 32).
    units: u32,
    row_bytes: u32,
    // Byte offset of the first slab's row 0 in `weights_0`.
    weight_offset: u32,
    x_offset: u32,
    y_offset: u32,
    // This buffer holds slabs first_slab.. (+ slabs) of the pool (from_pool 1) or of the
    // host copy (moe/expert_slab.wgsl), each `rows` rows; slot s reads x at
    // x_offset + (s / x_group) * x_stride (x_group = k when a token's k slots share its
    // input, 1 when each slot has its own) and writes y_offset + s * y_stride.
    first_slab: u32,
    slabs: u32,
    x_stride: u32,
    y_stride: u32,
    x_group: u32,
    from_pool: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_experts, rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights_0: array<u32>;
// [slots / x_group, x_stride] f32, read four floats at a time (x_stride is a multiple of 4)
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
// [slots, y_stride] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// [slots] u32: the routed experts
@group(0) @binding(4) var<storage, read> ids: array<u32>;
// [n_expert] u32: each expert's pool slot (moe/expert_slab.wgsl)
@group(0) @binding(5) var<storage, read> location: array<u32>;

fn x_at(i: u32) -> vec4<f32> {
    return x[i];
}

@compute @workgroup_size(WG)
fn matvec_experts(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let slot = wg.z;
    let at = expert_slab(ids[slot], params.from_pool, params.first_slab, params.slabs);
    // Another piece's dispatch reads this expert.
    if (at == NOT_RESIDENT) {
        return;
    }
    let slab = at * params.rows * params.row_bytes;
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    let v = rows_dots_0(
        first,
        lid,
        params.rows,
        params.units,
        params.row_bytes,
        params.weight_offset + slab,
        params.x_offset + (slot / params.x_group) * params.x_stride,
    );
    let lanes = WG * RPI / ROWS;
    let group_row = first + (lid / lanes) * RPI;
    if (lid % lanes == 0u) {
        for (var r = 0u; r < RPI; r++) {
            if (group_row + r < params.rows) {
                y[params.y_offset + slot * params.y_stride + group_row + r] = v[r];
            }
        }
    }
}
