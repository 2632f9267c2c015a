// The tile product of both matmul kernels on packed 8-bit dot products (dot4I8Packed): for
// GPUs that run them natively and have no cooperative matrices. The same entry points as
// linear/matmul_tile.wgsl; the weights are staged as their integer quants (the type's
// linear/stage_int8/ file: `stage_quants`, `stage_factors`), the inputs quantized here.
//
// Each 32-element unit is two halves of 16. A weight half is 16 byte quants q and factors
// (s, m) with w = s q + m (one scale per half covers q6_K's 16-element groups; m carries
// the K-quants' mins and q4_0's -8). A token's half is quantized to bytes p = round(x / d),
// d = max |x| / 127, and kept with (d, d sum p), so that
//   sum w x ~ s (d sum q p) + m (d sum p),
// four dot4I8Packed and two FMAs per row, token and half. Mirrors
// model::reference::linear::matvec on model::reference::linear::round_to_int8 of the inputs.
//
// Workgroup (row tile, token tile): invocation (r, t) = (lid % 16, lid / 16) owns rows
// r + 16 i (i < 8) of the TILE = 128 and tokens t + 16 j (j < TOKENS / 16). Units are
// double-buffered as in linear/matmul_half_tile.wgsl: one barrier a unit. TILE, TOKENS and
// WG come from Rust (ops/linear/matmul.rs).

struct Lanes {
    @builtin(local_invocation_index) index: u32,
}

const TOKENS_EACH: u32 = TOKENS / 16u;
const ROWS_EACH: u32 = TILE / 16u;
// Invocations per token half quantized (2 TOKENS of them, at most WG).
const X_SPREAD: u32 = WG / (2u * TOKENS);

// w_quants[(b * 2 + h) * TILE + r]: the 16 quants of half h of tile row r in buffer b, four
// a word; w_factors at the same index its (s, m). x_quants and x_factors the same for tile
// tokens.
var<workgroup> w_quants: array<vec4<u32>, 4 * TILE>;
var<workgroup> w_factors: array<vec2<f32>, 4 * TILE>;
var<workgroup> x_quants: array<vec4<u32>, 4 * TOKENS>;
var<workgroup> x_factors: array<vec2<f32>, 4 * TOKENS>;
// The buffer the stagers write (stage_unit's signature has no room for it).
var<private> stage_buffer: u32;

// The quants of elements 8 part .. + 8 of tile row r, four bytes a word.
fn stage_quants(r: u32, part: u32, q: vec2<u32>) {
    let at = (stage_buffer * 2u + part / 2u) * TILE + r;
    let w = 2u * (part % 2u);
    w_quants[at][w] = q.x;
    w_quants[at][w + 1u] = q.y;
}

// The factors (s, m) of half h of tile row r.
fn stage_factors(r: u32, h: u32, f: vec2<f32>) {
    w_factors[(stage_buffer * 2u + h) * TILE + r] = f;
}

// Elements 8 part .. + 8 of a tile row past the matrix.
fn stage_zeros(r: u32, part: u32) {
    stage_quants(r, part, vec2<u32>(0u));
    stage_factors(r, part / 2u, vec2<f32>(0.0));
}

// Half h of unit u of tile token tt (zeros past the `n` tokens) quantized into buffer b.
fn stage_input(b: u32, h: u32, u: u32, tok0: u32, tt: u32, n: u32) {
    var v: array<f32, 16>;
    var amax = 0.0;
    if (tt < n) {
        let at = params.x_offset + x_row(tok0, tt) * params.x_stride + 32u * u + 16u * h;
        for (var e = 0u; e < 16u; e++) {
            v[e] = x[at + e];
            amax = max(amax, abs(v[e]));
        }
    }
    let inv = select(0.0, 127.0 / amax, amax > 0.0);
    var words = vec4<u32>(0u);
    var sum = 0;
    for (var e = 0u; e < 16u; e++) {
        let p = i32(round(v[e] * inv));
        sum += p;
        words[e / 4u] |= (bitcast<u32>(p) & 0xFFu) << (8u * (e % 4u));
    }
    let d = amax / 127.0;
    let at = (b * 2u + h) * TOKENS + tt;
    x_quants[at] = words;
    x_factors[at] = vec2<f32>(d, d * f32(sum));
}

// Unit u of the tile's weight rows and inputs into buffer `b`.
fn stage(b: u32, u: u32, row0: u32, slab: u32, tok0: u32, n: u32, lid: u32) {
    stage_buffer = b;
    stage_weights(row0, slab, u, lid);
    // One invocation in every X_SPREAD takes a half of a token, so that the inputs' serial
    // loads spread over all the workgroup's subgroups, which wait for the slowest at the
    // next barrier (a 16-token expert tile has 32 halves for 256 invocations).
    if (lid % X_SPREAD == 0u) {
        let i = lid / X_SPREAD;
        stage_input(b, i / TOKENS, u, tok0, i % TOKENS, n);
    }
}

fn dot16(a: vec4<u32>, b: vec4<u32>) -> i32 {
    return dot4I8Packed(a.x, b.x) + dot4I8Packed(a.y, b.y) + dot4I8Packed(a.z, b.z) + dot4I8Packed(a.w, b.w);
}

// The TILE x TOKENS outputs of rows row0.. and the `n` tile tokens from tok0, weights from
// byte `slab` on.
fn tile_product(row0: u32, slab: u32, tok0: u32, n: u32, lanes: Lanes) {
    let lid = lanes.index;
    let r = lid % 16u;
    let t = lid / 16u;
    // acc[i * TOKENS_EACH + j]: row r + 16 i, tile token t + 16 j.
    var acc: array<f32, ROWS_EACH * TOKENS_EACH>;
    for (var k = 0u; k < ROWS_EACH * TOKENS_EACH; k++) {
        acc[k] = 0.0;
    }
    stage(0u, 0u, row0, slab, tok0, n, lid);
    workgroupBarrier();
    for (var u = 0u; u < params.units; u++) {
        let b = u % 2u;
        if (u + 1u < params.units) {
            stage(1u - b, u + 1u, row0, slab, tok0, n, lid);
        }
        for (var h = 0u; h < 2u; h++) {
            let half = b * 2u + h;
            var xq: array<vec4<u32>, TOKENS_EACH>;
            var xf: array<vec2<f32>, TOKENS_EACH>;
            for (var j = 0u; j < TOKENS_EACH; j++) {
                xq[j] = x_quants[half * TOKENS + t + 16u * j];
                xf[j] = x_factors[half * TOKENS + t + 16u * j];
            }
            for (var i = 0u; i < ROWS_EACH; i++) {
                let wq = w_quants[half * TILE + r + 16u * i];
                let wf = w_factors[half * TILE + r + 16u * i];
                for (var j = 0u; j < TOKENS_EACH; j++) {
                    let k = i * TOKENS_EACH + j;
                    acc[k] += wf.x * (xf[j].x * f32(dot16(wq, xq[j]))) + wf.y * xf[j].y;
                }
            }
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < TOKENS_EACH; j++) {
        let tt = t + 16u * j;
        if (tt < n) {
            let y_at = params.y_offset + y_row(tok0, tt) * params.y_stride;
            for (var i = 0u; i < ROWS_EACH; i++) {
                let row = row0 + r + 16u * i;
                if (row < params.rows) {
                    y[y_at + row] = acc[i * TOKENS_EACH + j];
                }
            }
        }
    }
}
