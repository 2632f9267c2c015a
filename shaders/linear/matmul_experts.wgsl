// The matmul over the slots a prefill chunk routed to each expert, grouped by expert
// (moe_group): each expert's weights are read once per tile of its slots, the tile sized
// to the slots an expert gets (TOKENS).
//
// Split: workgroup (row tile, expert, tile of that expert's slots); the slots come from
// `order`, the weights from the expert's slab in this dispatch's piece of the pool or of the
// host copy (moe/expert_slab.wgsl: other experts leave at once; the tile form's file,
// linear/matmul_tile.wgsl or linear/matmul_coop_tile.wgsl).
// Mirrors model::reference::linear::matvec applied per routed slot.

@group(0) @binding(0) var<storage, read> params: Params;
// [n_experts, rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [slots / x_group, x_stride] f32
@group(0) @binding(2) var<storage, read> x: array<f32>;
// [slots, y_stride] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// [slots] u32: slot indices grouped by expert (moe_group)
@group(0) @binding(4) var<storage, read> order: array<u32>;
// [n_expert + 1] u32: each expert's range in `order`
@group(0) @binding(5) var<storage, read> offsets: array<u32>;
// [n_expert] u32: each expert's pool slot
@group(0) @binding(6) var<storage, read> location: array<u32>;

// Tile token tt is slot order[tok0 + tt], which reads its token's x row.
fn x_row(tok0: u32, tt: u32) -> u32 {
    return order[tok0 + tt] / params.x_group;
}

fn y_row(tok0: u32, tt: u32) -> u32 {
    return order[tok0 + tt];
}

// Workgroup (row tile, expert, tile of that expert's slots).
@compute @workgroup_size(WG)
fn matmul_experts(@builtin(workgroup_id) wg: vec3<u32>, lanes: Lanes) {
    let range = expert_group(wg.y, lanes.index);
    let first = range.x + wg.z * TOKENS;
    if (range.z == NOT_RESIDENT || first >= range.y) {
        return;
    }
    tile_product(wg.x * TILE, range.z * params.rows * params.row_bytes, first, min(TOKENS, range.y - first), lanes);
}
