// The tiled matmul's staging for any type through its decoder's unit_values: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let v = unit_values(block, sub);
    for (var j = 0u; j < 8u; j += 4u) {
        let l = 8u * part + j;
        stage4(r, l, vec4<f32>(v[l], v[l + 1u], v[l + 2u], v[l + 3u]));
    }
}
