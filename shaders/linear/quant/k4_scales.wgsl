// Scale and min of group g (0..8) of a q4_K / q5_K block, from the 12 packed bytes at
// byte `scales` (ggml's get_scale_min_k4; dequant.rs k4_scale_min).
fn k4_scale_min(scales: u32, g: u32) -> vec2<f32> {
    if (g < 4u) {
        return vec2<f32>(f32(byte_at(scales + g) & 63u), f32(byte_at(scales + g + 4u) & 63u));
    }
    let a = byte_at(scales + g + 4u);
    let sc = (a & 0xFu) | ((byte_at(scales + g - 4u) >> 6u) << 4u);
    let mn = (a >> 4u) | ((byte_at(scales + g) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(mn));
}

// The factors of group g of the q4_K / q5_K block at byte `block`: d * scale (x) and
// dmin * min (y), so that its values are x * q - y.
fn k4_factors(block: u32, g: u32) -> vec2<f32> {
    let sm = k4_scale_min(block + 4u, g);
    return vec2<f32>(f16_at(block) * sm.x, f16_at(block + 2u) * sm.y);
}

// The factors of groups 2p and 2p + 1 of the q4_K / q5_K block at byte `block` (the two
// units whose quants share bytes): d * scale of each (x, y) and dmin * min of each (z, w).
fn k4_pair_factors(block: u32, p: u32) -> vec4<f32> {
    let lo = k4_scale_min(block + 4u, 2u * p);
    let hi = k4_scale_min(block + 4u, 2u * p + 1u);
    let d = f16_at(block);
    let dmin = f16_at(block + 2u);
    return vec4<f32>(d * lo.x, d * hi.x, dmin * lo.y, dmin * hi.y);
}
