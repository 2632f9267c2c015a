// unit_vec4s for any type: the unit's 32 values from the type's decoder
// (linear/quant/<type>.wgsl, unit_values) as eight vec4.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let v = unit_values(block, sub);
    for (var l = 0u; l < 8u; l++) {
        w[l] = vec4<f32>(v[4u * l], v[4u * l + 1u], v[4u * l + 2u], v[4u * l + 3u]);
    }
    return w;
}
