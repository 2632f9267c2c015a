// unit_dot for q5_K without materialising the unit. Blocks are 176 bytes, so qh and the
// quants are whole aligned words. As for q4_K (linear/dot/q4_k.wgsl), step `sub` (0..8) is
// half `sub % 2` of the unit pair p = sub / 2: four quant words whose low and high nibbles
// are 16 elements of units 2p and 2p + 1, every byte used by the lane that loads it. Their
// fifth bits are bits 2p and 2p + 1 of the same positions' qh bytes: qh packs one bit of
// all eight units in a byte, so four lanes share each qh word (32 of the block's 176
// bytes). Same values as quant/q5_k.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let p = sub / 2u;
    let half = sub % 2u;
    let f = k4_pair_factors(block, p);
    let qh = (block + 16u + 16u * half) >> 2u;
    let qs = (block + 48u + 32u * p + 16u * half) >> 2u;
    let x_lo = xb - 32u * sub + 64u * p + 16u * half;
    let x_hi = x_lo + 32u;
    var qx = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    var qy = vec4<f32>(0.0);
    var sy = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let q = weights[qs + j];
        let h = weights[qh + j] >> (2u * p);
        let lo = (q & 0x0F0F0F0Fu) | ((h & 0x01010101u) << 4u);
        let hi = ((q >> 4u) & 0x0F0F0F0Fu) | (((h >> 1u) & 0x01010101u) << 4u);
        let xl = x_at((x_lo + 4u * j) >> 2u);
        let xh = x_at((x_hi + 4u * j) >> 2u);
        qx += bytes_f32(lo) * xl;
        sx += xl;
        qy += bytes_f32(hi) * xh;
        sy += xh;
    }
    let one = vec4<f32>(1.0);
    return dot(f, vec4<f32>(dot(qx, one), dot(qy, one), -dot(sx, one), -dot(sy, one)));
}
