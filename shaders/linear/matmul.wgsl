// Y = X W^T for a block of tokens (prefill): X is [n_tokens, cols] f32, W a GGUF weight of
// `rows` rows in its block format, Y [n_tokens, y_stride] f32 (this piece's rows at
// y_offset..).
//
// Split: workgroup (row tile, token tile) as in the tile form's file (linear/matmul_tile.wgsl,
// or linear/matmul_coop_tile.wgsl on cooperative matrices). Mirrors
// model::reference::linear::matvec applied to each token.

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [n_tokens, x_stride] f32
@group(0) @binding(2) var<storage, read> x: array<f32>;
// [n_tokens, y_stride] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// Tile token tt is token tok0 + tt in both x and y.
fn x_row(tok0: u32, tt: u32) -> u32 {
    return tok0 + tt;
}

fn y_row(tok0: u32, tt: u32) -> u32 {
    return tok0 + tt;
}

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, lanes: Lanes) {
    let n = min(TOKENS, params.n_tokens - min(params.n_tokens, wg.y * TOKENS));
    tile_product(wg.x * TILE, 0u, wg.y * TOKENS, n, lanes);
}
