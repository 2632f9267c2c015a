// block_mxfp4 (17 bytes): an E8M0 exponent, 16 bytes of E2M1 nibbles (doubled to integers,
// so the scale is halved: 2^(e - 128)).
const BLOCK_BYTES: u32 = 17u;
const UNITS_PER_BLOCK: u32 = 1u;
const FP4_LEVELS = array<f32, 16>(0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0,
                                  0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0);

fn e8m0_half(e: u32) -> f32 {
    if (e < 2u) {
        return bitcast<f32>(0x00200000u << e);
    }
    return bitcast<f32>((e - 1u) << 23u);
}

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = e8m0_half(byte_at(block));
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 1u + j);
        v[j] = FP4_LEVELS[q & 0xFu] * d;
        v[j + 16u] = FP4_LEVELS[q >> 4u] * d;
    }
    return v;
}
