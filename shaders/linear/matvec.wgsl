// y = W x for one token (decode): W is a GGUF weight of `rows` rows, each `units` units of
// 32 elements in its block format, read in place and dequantized in registers.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x) owns ROWS consecutive rows
// (linear/matvec_rows.wgsl). Mirrors model::reference::linear::matvec over
// loader::dequant::dequantize.

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [cols] f32, read four floats at a time: one vector load per four weights rather than
// four scalar loads (x_offset is a multiple of 4)
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
// [rows] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn matvec(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    rows_dot(first, lid, params.weight_offset, params.x_offset, params.y_offset);
}
