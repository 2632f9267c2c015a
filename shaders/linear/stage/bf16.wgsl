// The tiled matmul's staging for bf16: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives (a bf16 is the high half of an f32).
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let w0 = (block >> 2u) + 4u * part;
    for (var j = 0u; j < 4u; j += 2u) {
        let a = weights[w0 + j];
        let b = weights[w0 + j + 1u];
        let v = bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xFFFF0000u, b << 16u, b & 0xFFFF0000u));
        stage4(r, 8u * part + 2u * j, v);
    }
}
