// The tiled matmul's staging for f16: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let w0 = (block >> 2u) + 4u * part;
    for (var j = 0u; j < 4u; j += 2u) {
        let v = vec4<f32>(unpack2x16float(weights[w0 + j]), unpack2x16float(weights[w0 + j + 1u]));
        stage4(r, 8u * part + 2u * j, v);
    }
}
