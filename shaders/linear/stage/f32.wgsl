// The tiled matmul's staging for f32: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let w0 = (block >> 2u) + 8u * part;
    for (var j = 0u; j < 8u; j += 4u) {
        stage4(r, 8u * part + j, bitcast<vec4<f32>>(vec4<u32>(weights[w0 + j], weights[w0 + j + 1u], weights[w0 + j + 2u], weights[w0 + j + 3u])));
    }
}
