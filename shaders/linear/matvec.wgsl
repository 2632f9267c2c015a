// y = W x for one token (decode): W is a GGUF weight of `rows` rows, each `units` units of
// 32 elements in its block format, read in place and dequantized in registers.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x) owns ROWS consecutive rows; its WG
// invocations stride over a row's 32-element units (unit_dot, from the type's file in
// linear/quant/), and workgroup_sum (common/reduce_*) adds their partials.
// Mirrors model::reference::linear::matvec over loader::dequant::dequantize.

struct Params {
    rows: u32,
    // 32-element units per row (cols / 32).
    units: u32,
    row_bytes: u32,
    // Byte offset of row 0 in `weights` (an expert's slab, a split piece).
    weight_offset: u32,
    x_offset: u32,
    y_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [cols] f32
@group(0) @binding(2) var<storage, read> x: array<f32>;
// [rows] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

override WG: u32 = 64u;
override ROWS: u32 = 2u;

@compute @workgroup_size(WG)
fn matvec(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    for (var r = 0u; r < ROWS; r++) {
        let row = first + r;
        var acc = 0.0;
        if (row < params.rows) {
            let base = params.weight_offset + row * params.row_bytes;
            for (var u = lid; u < params.units; u += WG) {
                let block = base + (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
                acc += unit_dot(block, u % UNITS_PER_BLOCK, params.x_offset + 32u * u);
            }
        }
        let total = workgroup_sum(acc, lid);
        if (lid == 0u && row < params.rows) {
            y[params.y_offset + row] = total;
        }
    }
}
