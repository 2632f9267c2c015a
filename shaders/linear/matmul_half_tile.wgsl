// The tile product of both matmul kernels for GPUs without cooperative matrices: the same
// entry points and staging decoders as linear/matmul_tile.wgsl, with the tiles in f16,
// twice the rows a workgroup (TILE = 128) and a register tile twice as tall, and the
// staging of the next 32-element unit overlapping the products of this one.
//
// Workgroup (row tile, token tile): invocation (r, t) = (lid % 16, lid / 16) owns rows
// r + 16 i (i < 8) of the tile and tokens t + 16 j (j < TOKENS / 16), 8 x TOKENS / 16
// accumulators in registers. Each unit is staged into one of two buffers while the other is
// read, one barrier a unit: the weights as the type's stage_unit gives them (rows by four
// invocations each), the tokens' inputs beside them, both rounded to f16, which halves the
// workgroup memory a product step reads (two vec4<f16> of weights and one of inputs for 32
// FMAs). TILE, TOKENS and WG come from Rust (ops/linear/matmul.rs).

struct Lanes {
    @builtin(local_invocation_index) index: u32,
}

const TOKENS_EACH: u32 = TOKENS / 16u;

// w_tile[(b * 32 + l) * 32 + 2 q + h][c]: element l of tile row q + 16 (4 h + c) in buffer
// b. x_tile[(b * 32 + l) * 16 + q][c]: element l of tile token q + 16 c.
var<workgroup> w_tile: array<vec4<f16>, 2 * 32 * 32>;
var<workgroup> x_tile: array<vec4<f16>, 2 * 32 * 16>;
// The buffer stage4 writes (stage_unit's signature has no room for it).
var<private> stage_buffer: u32;

// Elements l.. l + 3 of tile row r (stage_unit's output).
fn stage4(r: u32, l: u32, v: vec4<f32>) {
    let q = r % 16u;
    let c = r / 16u;
    let at = (stage_buffer * 32u + l) * 32u + 2u * q + c / 4u;
    w_tile[at][c % 4u] = f16(v.x);
    w_tile[at + 32u][c % 4u] = f16(v.y);
    w_tile[at + 64u][c % 4u] = f16(v.z);
    w_tile[at + 96u][c % 4u] = f16(v.w);
}

// Unit u of the tile's weight rows and inputs into buffer `b`.
fn stage(b: u32, u: u32, row0: u32, slab: u32, tok0: u32, n: u32, lid: u32) {
    stage_buffer = b;
    stage_weights(row0, slab, u, lid);
    // Neighbouring invocations take neighbouring tokens, four elements each.
    for (var i = lid; i < TOKENS * 8u; i += WG) {
        let tt = i % TOKENS;
        let l = 4u * (i / TOKENS);
        var v = vec4<f32>(0.0);
        if (tt < n) {
            let at = params.x_offset + x_row(tok0, tt) * params.x_stride + 32u * u + l;
            v = vec4<f32>(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
        }
        let at = (b * 32u + l) * 16u + tt % 16u;
        let c = tt / 16u;
        x_tile[at][c] = f16(v.x);
        x_tile[at + 16u][c] = f16(v.y);
        x_tile[at + 32u][c] = f16(v.z);
        x_tile[at + 48u][c] = f16(v.w);
    }
}

// The TILE x TOKENS outputs of rows row0.. and the `n` tile tokens from tok0, weights from
// byte `slab` on.
fn tile_product(row0: u32, slab: u32, tok0: u32, n: u32, lanes: Lanes) {
    let lid = lanes.index;
    let r = lid % 16u;
    let t = lid / 16u;
    // lo[j], hi[j]: tile token t + 16 j of rows r + 16 i, i < 4 and 4 <= i < 8.
    var lo: array<vec4<f32>, TOKENS_EACH>;
    var hi: array<vec4<f32>, TOKENS_EACH>;
    for (var j = 0u; j < TOKENS_EACH; j++) {
        lo[j] = vec4<f32>(0.0);
        hi[j] = vec4<f32>(0.0);
    }
    stage(0u, 0u, row0, slab, tok0, n, lid);
    workgroupBarrier();
    for (var u = 0u; u < params.units; u++) {
        let b = u % 2u;
        if (u + 1u < params.units) {
            stage(1u - b, u + 1u, row0, slab, tok0, n, lid);
        }
        for (var l = 0u; l < 32u; l++) {
            let at = b * 32u + l;
            let xv = vec4<f32>(x_tile[at * 16u + t]);
            let w_lo = vec4<f32>(w_tile[at * 32u + 2u * r]);
            let w_hi = vec4<f32>(w_tile[at * 32u + 2u * r + 1u]);
            for (var j = 0u; j < TOKENS_EACH; j++) {
                lo[j] += w_lo * xv[j];
                hi[j] += w_hi * xv[j];
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
                    y[y_at + row] = lo[j][i];
                }
                if (row + 64u < params.rows) {
                    y[y_at + row + 64u] = hi[j][i];
                }
            }
        }
    }
}
