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
