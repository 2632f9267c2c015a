// unit_dot_cols for q6_K, over the RPI rows whose blocks are given: step `sub` is positions
// 8m..8m+8 (m = sub % 4) of the four units of half h = sub / 4, as in linear/dot/q6_k.wgsl
// (two words of each ql row and two of qh, every byte used). Those positions share one
// 16-element scale per unit, folded into the weights with d once; each column's x is then
// read once and multiplied into every row. Same values as quant/q6_k.wgsl's decoder.
fn unit_dot_cols(
    blocks: ptr<function, array<u32, RPI>>,
    sub: u32,
    xi: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    let h = sub / 4u;
    let m = sub % 4u;
    let l = 8u * m;
    // Element l of unit 0 of the half.
    let x0 = xi - 32u * sub + 128u * h + l;
    var f: array<vec4<f32>, RPI>;
    for (var r = 0u; r < RPI; r++) {
        let sc = (*blocks)[r] + 192u + 8u * h + m / 2u;
        let scales = vec4<f32>(
            i8_of(byte_at(sc)),
            i8_of(byte_at(sc + 2u)),
            i8_of(byte_at(sc + 4u)),
            i8_of(byte_at(sc + 6u)),
        );
        f[r] = f16_at((*blocks)[r] + 208u) * scales;
    }
    for (var j = 0u; j < 8u; j += 4u) {
        // Each row's positions l + j .. l + j + 4 of units 0..3.
        var w: array<array<vec4<f32>, 4>, RPI>;
        for (var r = 0u; r < RPI; r++) {
            let ql = (*blocks)[r] + 64u * h + l + j;
            let a = u32_at(ql);
            let b = u32_at(ql + 32u);
            let hb = u32_at((*blocks)[r] + 128u + 32u * h + l + j);
            let q0 = (a & 0x0F0F0F0Fu) | ((hb & 0x03030303u) << 4u);
            let q1 = (b & 0x0F0F0F0Fu) | (((hb >> 2u) & 0x03030303u) << 4u);
            let q2 = ((a >> 4u) & 0x0F0F0F0Fu) | (((hb >> 4u) & 0x03030303u) << 4u);
            let q3 = ((b >> 4u) & 0x0F0F0F0Fu) | (((hb >> 6u) & 0x03030303u) << 4u);
            w[r][0] = (bytes_f32(q0) - 32.0) * f[r].x;
            w[r][1] = (bytes_f32(q1) - 32.0) * f[r].y;
            w[r][2] = (bytes_f32(q2) - 32.0) * f[r].z;
            w[r][3] = (bytes_f32(q3) - 32.0) * f[r].w;
        }
        for (var c = 0u; c < COLS; c++) {
            if (c < n_cols()) {
                let x0v = x_col(c, x0 + j);
                let x1v = x_col(c, x0 + 32u + j);
                let x2v = x_col(c, x0 + 64u + j);
                let x3v = x_col(c, x0 + 96u + j);
                for (var r = 0u; r < RPI; r++) {
                    (*acc)[r * COLS + c] += (dot(w[r][0], x0v) + dot(w[r][1], x1v))
                        + (dot(w[r][2], x2v) + dot(w[r][3], x3v));
                }
            }
        }
    }
}
