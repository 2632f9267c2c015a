// y = W x for one token (decode): W is a GGUF weight of `rows` rows, each `units` units of
// 32 elements in its block format, read in place and dequantized in registers.
// `matvec_experts` does the same for the experts tokens were routed to: slot s (token
// s / k, its (s % k)-th expert) multiplies expert ids[s]'s slab with that token's input into
// y[s * y_stride..]; the ids are read on the GPU, never by the CPU. With n_tokens * k slots
// it is the prefill form too.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x) owns ROWS consecutive rows (wg.z is the
// expert slot), WG / ROWS invocations per row striding over its 32-element units (unit_dot,
// from the type's file in linear/quant/), their partials added in workgroup memory.
// Mirrors model::reference::linear::matvec over loader::dequant::dequantize.

struct Params {
    rows: u32,
    // 32-element units per row (cols / 32).
    units: u32,
    row_bytes: u32,
    // Byte offset of row 0 in `weights` (a split piece starts at 0).
    weight_offset: u32,
    x_offset: u32,
    y_offset: u32,
    // matvec_experts: the experts this buffer holds are first_expert.. (+ n_experts), each
    // `rows` rows; slot s reads x at x_offset + (s / x_group) * x_stride (x_group = k when
    // a token's k slots share its input, 1 when each slot has its own) and writes
    // y_offset + s * y_stride.
    first_expert: u32,
    n_experts: u32,
    x_stride: u32,
    y_stride: u32,
    x_group: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, row_bytes] GGUF blocks (matvec_experts: [n_experts, rows, row_bytes]), as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [cols] f32 (matvec_experts: [slots, x_stride]), read four floats at a time: one vector
// load per four weights rather than four scalar loads (x_offset and x_stride are multiples
// of 4).
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
// [rows] f32 (matvec_experts: [slots, y_stride])
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// [slots] u32: the routed experts (matvec_experts)
@group(0) @binding(4) var<storage, read> ids: array<u32>;

override WG: u32 = 64u;
// Rows per workgroup; each row gets TPR = WG / ROWS invocations, which stride over its
// units and add their partials in a short tree (enough work per invocation, one barrier
// tree per workgroup rather than a full-workgroup reduction per row).
override ROWS: u32 = 8u;
override TPR: u32 = WG / ROWS;

var<workgroup> partial: array<f32, WG>;

fn rows_dot(first: u32, lid: u32, weight_base: u32, x_base: u32, y_base: u32) {
    let lane = lid % TPR;
    let row = first + lid / TPR;
    var acc = 0.0;
    if (row < params.rows) {
        let base = weight_base + row * params.row_bytes;
        for (var u = lane; u < params.units; u += TPR) {
            let block = base + (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
            acc += unit_dot(block, u % UNITS_PER_BLOCK, x_base + 32u * u);
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < params.rows) {
        y[y_base + row] = partial[lid];
    }
}

@compute @workgroup_size(WG)
fn matvec(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    rows_dot(first, lid, params.weight_offset, params.x_offset, params.y_offset);
}

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
