// Embedding lookup from a table kept in its GGUF block format: out[t] = row tokens[t] of the
// table, dequantized (the type's decoder, linear/quant/<type>.wgsl, expands each unit).
// A table larger than one storage binding comes in pieces of rows first_row..; each
// dispatch fills the tokens whose rows it holds.
//
// Split: one invocation per (token, 32-element unit). Mirrors a row of
// loader::dequant::dequantize. WG comes from Rust (ops/linear/embed.rs).

struct Params {
    n_tokens: u32,
    units: u32,
    row_bytes: u32,
    first_row: u32,
    rows: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [n_tokens] u32
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
// [n_tokens, units * 32] f32
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= params.n_tokens * params.units) {
        return;
    }
    let t = i / params.units;
    let u = i % params.units;
    let token = tokens[t];
    if (token < params.first_row || token >= params.first_row + params.rows) {
        return;
    }
    let block = (token - params.first_row) * params.row_bytes + (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
    let v = unit_values(block, u % UNITS_PER_BLOCK);
    let dst = (t * params.units + u) * 32u;
    for (var l = 0u; l < 32u; l++) {
        out[dst + l] = v[l];
    }
}
