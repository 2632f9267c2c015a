// The tiled matmul's staging for f32: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let w0 = (block >> 2u) + 8u * part;
    for (var j = 0u; j < 8u; j++) {
        w_tile[r][8u * part + j] = bitcast<f32>(weights[w0 + j]);
    }
}
