// The tile product of both matmul kernels on cooperative matrices (tensor cores, simdgroup
// matrices): the same tiles, entry points and staging decoders as linear/matmul_tile.wgsl,
// with the weights and inputs staged as f16 and multiplied by whole subgroups in SIZE x
// SIZE blocks into f32 accumulators.
//
// Each 32-element unit along the row length is staged once (TILE weight rows dequantized by
// the type's stage_unit, four invocations a row; TOKENS input rows converted to f16), then
// the TOKENS x TILE outputs, BLOCKS blocks of SIZE x SIZE, are shared among the subgroups
// ("teams"): team s of `teams` owns blocks s, s + teams, .. (at most TEAM_BLOCKS of them,
// the count at the adapter's largest subgroup size). The finished blocks go through
// workgroup memory so that the writes to y are coalesced and can follow y_row.
//
// The matrix operations (Acc, acc_zero, acc_mma, acc_store) and Lanes come from
// linear/coop/mat16.wgsl or mat8.wgsl (the adapter's matrices), or from
// linear/coop/emulated.wgsl, which writes them out in plain WGSL over the same layouts so
// that every device runs this file's tiling. Rust (ops/linear/matmul.rs) injects TILE,
// TOKENS, WG, SIZE and TEAM_BLOCKS.

// f16 elements a staged row takes: 32 plus padding that keeps every block's first element
// 16-byte aligned (cooperative loads want it) and shifts neighbouring rows across banks.
const B_STRIDE: u32 = 40u;
const A_STRIDE: u32 = 40u;
// f32 elements a staged output token takes.
const C_STRIDE: u32 = TILE + 4u;
const BLOCK_ROWS: u32 = TILE / SIZE;
const BLOCKS: u32 = (TOKENS / SIZE) * BLOCK_ROWS;

// b_half[r * B_STRIDE + l]: element l of the unit of tile row r (the B operand, column-major).
var<workgroup> b_half: array<f16, TILE * B_STRIDE>;
// a_half[t * A_STRIDE + l]: element l of the unit of tile token t (the A operand, row-major).
var<workgroup> a_half: array<f16, TOKENS * A_STRIDE>;
// c_tile[t * C_STRIDE + r]: the output of tile token t and row r.
var<workgroup> c_tile: array<f32, TOKENS * C_STRIDE>;

// Elements l.. l + 3 of tile row r (stage_unit's output).
fn stage4(r: u32, l: u32, v: vec4<f32>) {
    let at = r * B_STRIDE + l;
    b_half[at] = f16(v.x);
    b_half[at + 1u] = f16(v.y);
    b_half[at + 2u] = f16(v.z);
    b_half[at + 3u] = f16(v.w);
}

// The TILE x TOKENS outputs of rows row0.. and the `n` tile tokens from tok0, weights from
// byte `slab` on.
fn tile_product(row0: u32, slab: u32, tok0: u32, n: u32, lanes: Lanes) {
    let lid = lanes.index;
    let team = team_of(lanes);
    let teams = teams_of(lanes);
    var acc: array<Acc, TEAM_BLOCKS>;
    for (var i = 0u; i < TEAM_BLOCKS; i++) {
        acc[i] = acc_zero();
    }
    for (var u = 0u; u < params.units; u++) {
        stage_weights(row0, slab, u, lid);
        // Eight invocations a token, each four neighbouring floats of its row.
        for (var i = lid; i < TOKENS * 8u; i += WG) {
            let tt = i / 8u;
            let l = 4u * (i % 8u);
            var v = vec4<f32>(0.0);
            if (tt < n) {
                let at = params.x_offset + x_row(tok0, tt) * params.x_stride + 32u * u + l;
                v = vec4<f32>(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
            }
            let to = tt * A_STRIDE + l;
            a_half[to] = f16(v.x);
            a_half[to + 1u] = f16(v.y);
            a_half[to + 2u] = f16(v.z);
            a_half[to + 3u] = f16(v.w);
        }
        workgroupBarrier();
        for (var i = 0u; i < TEAM_BLOCKS; i++) {
            let b = team + i * teams;
            if (b < BLOCKS) {
                let a_at = (b / BLOCK_ROWS) * SIZE * A_STRIDE;
                let b_at = (b % BLOCK_ROWS) * SIZE * B_STRIDE;
                for (var k = 0u; k < 32u; k += SIZE) {
                    acc[i] = acc_mma(acc[i], a_at + k, A_STRIDE, b_at + k, B_STRIDE, lanes);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TEAM_BLOCKS; i++) {
        let b = team + i * teams;
        if (b < BLOCKS) {
            acc_store(acc[i], (b / BLOCK_ROWS) * SIZE * C_STRIDE + (b % BLOCK_ROWS) * SIZE, C_STRIDE, lanes);
        }
    }
    workgroupBarrier();
    for (var i = lid; i < TOKENS * TILE; i += WG) {
        let tt = i / TILE;
        let r = i % TILE;
        let row = row0 + r;
        if (tt < n && row < params.rows) {
            y[params.y_offset + y_row(tok0, tt) * params.y_stride + row] = c_tile[tt * C_STRIDE + r];
        }
    }
}
