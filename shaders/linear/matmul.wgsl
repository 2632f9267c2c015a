// Y = X W^T for a block of tokens (prefill): X is [n_tokens, cols] f32, W a GGUF weight of
// `rows` rows in its block format, Y [n_tokens, y_stride] f32 (this piece's rows at
// y_offset..).
//
// Split: workgroup (row tile, token tile) computes TILE x TILE outputs, one per invocation.
// Along the row length, 32-element units of TILE weight rows are dequantized once into
// workgroup memory (unit_values) and shared by the TILE tokens, and the tokens' 32 inputs
// are staged beside them, so each weight block is decoded once per token tile instead of
// once per token. Mirrors model::reference::linear::matvec applied to each token.

struct Params {
    rows: u32,
    units: u32,
    row_bytes: u32,
    n_tokens: u32,
    // Floats per token in x, and in y.
    x_stride: u32,
    y_stride: u32,
    x_offset: u32,
    y_offset: u32,
}

const TILE: u32 = 16u;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
// [rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [n_tokens, x_stride] f32
@group(0) @binding(2) var<storage, read> x: array<f32>;
// [n_tokens, y_stride] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> w_tile: array<array<f32, 32>, TILE>;
var<workgroup> x_tile: array<array<f32, 32>, TILE>;

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = wg.x * TILE;
    let tok0 = wg.y * TILE;
    let r = lid % TILE;
    let t = lid / TILE;
    var acc = 0.0;
    for (var u = 0u; u < params.units; u++) {
        // TILE invocations decode one weight unit each; the others stage the inputs.
        if (lid < TILE) {
            let row = row0 + lid;
            if (row < params.rows) {
                let block = row * params.row_bytes + (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
                w_tile[lid] = unit_values(block, u % UNITS_PER_BLOCK);
            } else {
                w_tile[lid] = array<f32, 32>();
            }
        }
        for (var i = lid; i < TILE * 32u; i += WG) {
            let tt = i / 32u;
            let l = i % 32u;
            let tok = tok0 + tt;
            var v = 0.0;
            if (tok < params.n_tokens) {
                v = x[params.x_offset + tok * params.x_stride + 32u * u + l];
            }
            x_tile[tt][l] = v;
        }
        workgroupBarrier();
        for (var l = 0u; l < 32u; l++) {
            acc += w_tile[r][l] * x_tile[t][l];
        }
        workgroupBarrier();
    }
    let row = row0 + r;
    let tok = tok0 + t;
    if (row < params.rows && tok < params.n_tokens) {
        y[params.y_offset + tok * params.y_stride + row] = acc;
    }
}
