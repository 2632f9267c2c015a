// The rows past the matrix for the tile forms that stage floats (stage4): the f32, f16 and
// cooperative tiles.

// Elements 8 part .. + 8 of a tile row past the matrix.
fn stage_zeros(r: u32, part: u32) {
    stage4(r, 8u * part, vec4<f32>(0.0));
    stage4(r, 8u * part + 4u, vec4<f32>(0.0));
}
