// The tile product both matmul kernels share. Workgroup (row tile, token tile) computes
// TILE rows x TOKENS tokens, TOKENS / 16 per invocation for each of its 4 rows (strided by
// 16) in registers. Along the row length, 32-element units of TILE weight rows are
// dequantized once into workgroup memory (stage_unit, four invocations per row) and shared
// by the TOKENS tokens, whose 32 inputs are staged beside them. TILE, TOKENS (16, 32 or 64:
// matmul_experts sizes it to the tokens an expert gets) and WG come from Rust
// (ops/linear/matmul.rs); the kernel's file defines x_row and y_row (which x and y row tile
// token tt of the tile from tok0 reads and writes) and the globals `params`, `weights`,
// `x`, `y`; linear/matmul_params.wgsl defines `Params`.

// One invocation of the workgroup: the entry points take it as they take their workgroup
// id, so that each tile form names the builtins it needs (the cooperative form adds its
// subgroup's place).
struct Lanes {
    @builtin(local_invocation_index) index: u32,
}

// Packed for the product loop: w_tile[l][r] holds element l of rows r, r + 16, r + 32,
// r + 48 and x_tile[l][t] element l of tile tokens t, t + 16, t + 32, t + 48 (as many as
// TOKENS has), so each step of that loop reads one vector of each instead of scalars (on
// CPU devices every workgroup-memory read is a per-lane gather).
const TOKENS_EACH: u32 = TOKENS / 16u;

var<workgroup> w_tile: array<array<vec4<f32>, 16>, 32>;
var<workgroup> x_tile: array<array<vec4<f32>, 16>, 32>;

// Elements l.. l + 3 of tile row r (stage_unit's output).
fn stage4(r: u32, l: u32, v: vec4<f32>) {
    let q = r % 16u;
    let c = r / 16u;
    w_tile[l][q][c] = v.x;
    w_tile[l + 1u][q][c] = v.y;
    w_tile[l + 2u][q][c] = v.z;
    w_tile[l + 3u][q][c] = v.w;
}

// Elements l.. l + 3 of tile token tt.
fn stage_x4(tt: u32, l: u32, v: vec4<f32>) {
    let q = tt % 16u;
    let c = tt / 16u;
    x_tile[l][q][c] = v.x;
    x_tile[l + 1u][q][c] = v.y;
    x_tile[l + 2u][q][c] = v.z;
    x_tile[l + 3u][q][c] = v.w;
}

// The TILE x TOKENS outputs of rows row0.. and the `n` tile tokens from tok0, weights from
// byte `slab` on.
fn tile_product(row0: u32, slab: u32, tok0: u32, n: u32, lanes: Lanes) {
    let lid = lanes.index;
    let r = lid % 16u;
    let t = lid / 16u;
    // acc[j]: tile token t + 16 j of rows r, r + 16, r + 32, r + 48.
    var acc: array<vec4<f32>, TOKENS_EACH>;
    for (var j = 0u; j < TOKENS_EACH; j++) {
        acc[j] = vec4<f32>(0.0);
    }
    for (var u = 0u; u < params.units; u++) {
        stage_weights(row0, slab, u, lid);
        // Neighbouring invocations take neighbouring tokens, four elements each: their
        // stores land 4 words apart in x_tile (2 per bank), where walking the elements
        // put 32 neighbours 64 words apart, all in one bank.
        for (var i = lid; i < TOKENS * 8u; i += WG) {
            let tt = i % TOKENS;
            let l = 4u * (i / TOKENS);
            var v = vec4<f32>(0.0);
            if (tt < n) {
                let at = params.x_offset + x_row(tok0, tt) * params.x_stride + 32u * u + l;
                v = vec4<f32>(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
            }
            stage_x4(tt, l, v);
        }
        workgroupBarrier();
        for (var l = 0u; l < 32u; l++) {
            let xv = x_tile[l][t];
            let wv = w_tile[l][r];
            for (var j = 0u; j < TOKENS_EACH; j++) {
                acc[j] += wv * xv[j];
            }
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < TOKENS_EACH; j++) {
        let tt = t + 16u * j;
        if (tt < n) {
            let y_at = params.y_offset + y_row(tok0, tt) * params.y_stride;
            for (var i = 0u; i < 4u; i++) {
                let row = row0 + r + 16u * i;
                if (row < params.rows) {
                    y[y_at + row] = acc[j][i];
                }
            }
        }
    }
}
