// block_q8_K (292 bytes): f32 d, 256 i8, 16 i16 sums (unused here); y = d * q.
const BLOCK_BYTES: u32 = 292u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = bitcast<f32>(u32_at(block));
    for (var l = 0u; l < 32u; l++) {
        v[l] = d * i8_of(byte_at(block + 4u + 32u * sub + l));
    }
    return v;
}
