// The dot product of one 32-element unit of a weight row with x_at(xb..xb + 32), from the
// unit's values as the type's decoder (linear/quant/<type>.wgsl) expands them in registers.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let v = unit_values(block, sub);
    var acc = vec4<f32>(0.0);
    for (var l = 0u; l < 32u; l += 4u) {
        acc += vec4<f32>(v[l], v[l + 1u], v[l + 2u], v[l + 3u]) * x_at((xb + l) >> 2u);
    }
    return acc.x + acc.y + acc.z + acc.w;
}
