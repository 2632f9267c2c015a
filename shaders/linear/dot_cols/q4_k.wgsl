// unit_dot_cols for q4_K, over the RPI rows whose blocks are given: step `sub` of a block is
// half of the unit pair p = sub / 2 (as in linear/dot/q4_k.wgsl), four words whose low
// nibbles are 16 elements of unit 2p and high nibbles the same 16 of unit 2p + 1. Each word
// becomes two vec4 of weights, q * d * scale - dmin * min, once; then each column's x is
// read once and multiplied into every row (dot_cols/pair.wgsl). Same values as
// quant/q4_k.wgsl's decoder.
fn unit_dot_cols(
    blocks: ptr<function, array<u32, RPI>>,
    sub: u32,
    xi: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    let p = sub / 2u;
    let half = sub % 2u;
    var f: array<vec4<f32>, RPI>;
    var qs: array<u32, RPI>;
    for (var r = 0u; r < RPI; r++) {
        f[r] = k4_pair_factors((*blocks)[r], p);
        qs[r] = ((*blocks)[r] + 16u + 32u * p + 16u * half) >> 2u;
    }
    // Element 0 of unit 2p's half (unit 2p + 1's is 32 further).
    let x_lo = xi - 32u * sub + 64u * p + 16u * half;
    for (var j = 0u; j < 4u; j++) {
        var lo: array<vec4<f32>, RPI>;
        var hi: array<vec4<f32>, RPI>;
        for (var r = 0u; r < RPI; r++) {
            let q = weights[qs[r] + j];
            lo[r] = bytes_f32(q & 0x0F0F0F0Fu) * f[r].x - f[r].z;
            hi[r] = bytes_f32((q >> 4u) & 0x0F0F0F0Fu) * f[r].y - f[r].w;
        }
        add_pair_cols(&lo, &hi, x_lo + 4u * j, x_lo + 32u + 4u * j, acc);
    }
}
