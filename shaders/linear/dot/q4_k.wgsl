// unit_dot for q4_K without materialising the unit. Blocks are 144 bytes, so the quants are
// whole aligned words. A byte's two nibbles belong to two units (2p and 2p + 1, same
// position), so step `sub` of a block (0..8) is not unit `sub` but half `sub % 2` of the
// pair p = sub / 2: four words, whose low nibbles are 16 elements of unit 2p and whose high
// nibbles are the same 16 of unit 2p + 1. Every byte a lane loads is used by that lane, and
// neighbouring lanes load neighbouring 16 bytes. sum(q x) and sum(x) per unit give
// d * scale * sum(q x) - dmin * min * sum(x). Same values as quant/q4_k.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let p = sub / 2u;
    let half = sub % 2u;
    let f = k4_pair_factors(block, p);
    let qs = (block + 16u + 32u * p + 16u * half) >> 2u;
    // Element 0 of unit 2p's half, and of unit 2p + 1's.
    let x_lo = xb - 32u * sub + 64u * p + 16u * half;
    let x_hi = x_lo + 32u;
    var qx = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    var qy = vec4<f32>(0.0);
    var sy = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let q = weights[qs + j];
        let xl = x_at((x_lo + 4u * j) >> 2u);
        let xh = x_at((x_hi + 4u * j) >> 2u);
        qx += bytes_f32(q & 0x0F0F0F0Fu) * xl;
        sx += xl;
        qy += bytes_f32((q >> 4u) & 0x0F0F0F0Fu) * xh;
        sy += xh;
    }
    let one = vec4<f32>(1.0);
    return dot(f, vec4<f32>(dot(qx, one), dot(qy, one), -dot(sx, one), -dot(sy, one)));
}
