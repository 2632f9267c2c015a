// unit_dot_cols for q4_K: step `sub` of a block is half of the unit pair p = sub / 2 (as in
// linear/dot/q4_k.wgsl), four words whose low nibbles are 16 elements of unit 2p and high
// nibbles the same 16 of unit 2p + 1. Each word becomes two vec4 of weights,
// q * d * scale - dmin * min, once; then each column's x is multiplied in. Same values as
// quant/q4_k.wgsl's decoder.
fn unit_dot_cols(block: u32, sub: u32, xi: u32, acc: ptr<function, array<f32, COLS>>) {
    let p = sub / 2u;
    let half = sub % 2u;
    let f = k4_pair_factors(block, p);
    let qs = (block + 16u + 32u * p + 16u * half) >> 2u;
    // Element 0 of unit 2p's half (unit 2p + 1's is 32 further).
    let x_lo = xi - 32u * sub + 64u * p + 16u * half;
    for (var j = 0u; j < 4u; j++) {
        let q = weights[qs + j];
        let lo = bytes_f32(q & 0x0F0F0F0Fu) * f.x - f.z;
        let hi = bytes_f32((q >> 4u) & 0x0F0F0F0Fu) * f.y - f.w;
        for (var c = 0u; c < COLS; c++) {
            if (c < n_cols()) {
                (*acc)[c] += dot(lo, x_col(c, x_lo + 4u * j)) + dot(hi, x_col(c, x_lo + 32u + 4u * j));
            }
        }
    }
}
