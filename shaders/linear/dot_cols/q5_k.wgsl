// unit_dot_cols for q5_K, over the RPI rows whose blocks are given: the q4_K steps
// (dot_cols/q4_k.wgsl) with each element's fifth bit from bits 2p and 2p + 1 of its qh byte
// (as in linear/dot/q5_k.wgsl). Each word becomes two vec4 of weights once; then each
// column's x is read once and multiplied into every row (dot_cols/pair.wgsl). Same values
// as quant/q5_k.wgsl's decoder.
fn unit_dot_cols(
    blocks: ptr<function, array<u32, RPI>>,
    sub: u32,
    xi: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    let p = sub / 2u;
    let half = sub % 2u;
    var f: array<vec4<f32>, RPI>;
    for (var r = 0u; r < RPI; r++) {
        f[r] = k4_pair_factors((*blocks)[r], p);
    }
    let x_lo = xi - 32u * sub + 64u * p + 16u * half;
    for (var j = 0u; j < 4u; j++) {
        var lo: array<vec4<f32>, RPI>;
        var hi: array<vec4<f32>, RPI>;
        for (var r = 0u; r < RPI; r++) {
            let block = (*blocks)[r];
            let q = weights[((block + 48u + 32u * p + 16u * half) >> 2u) + j];
            let h = weights[((block + 16u + 16u * half) >> 2u) + j] >> (2u * p);
            let ql = (q & 0x0F0F0F0Fu) | ((h & 0x01010101u) << 4u);
            let qh = ((q >> 4u) & 0x0F0F0F0Fu) | (((h >> 1u) & 0x01010101u) << 4u);
            lo[r] = bytes_f32(ql) * f[r].x - f[r].z;
            hi[r] = bytes_f32(qh) * f[r].y - f[r].w;
        }
        add_pair_cols(&lo, &hi, x_lo + 4u * j, x_lo + 32u + 4u * j, acc);
    }
}
