// block_q3_K (110 bytes): hmask[32], qs[64], scales[12] (sixteen 6-bit scales), f16 d.
// Unit s: half h = s / 4, j = s % 4; element l: 2 bits of qs[32h + l] at shift 2j, minus 4
// unless bit 4h + j of hmask[l] is set; group 8h + 2j + l / 16; y = d * (scale - 32) * q.
const BLOCK_BYTES: u32 = 110u;
const UNITS_PER_BLOCK: u32 = 8u;

fn q3k_scale(block: u32, g: u32) -> f32 {
    var low: u32;
    if (g < 8u) {
        low = byte_at(block + 96u + g) & 0xFu;
    } else {
        low = byte_at(block + 96u + g - 8u) >> 4u;
    }
    let high = (byte_at(block + 104u + g % 4u) >> (2u * (g / 4u))) & 3u;
    return f32(i32(low | (high << 4u)) - 32);
}

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let h = sub / 4u;
    let j = sub % 4u;
    let d = f16_at(block + 108u);
    for (var g = 0u; g < 2u; g++) {
        let dl = d * q3k_scale(block, 8u * h + 2u * j + g);
        for (var l = 16u * g; l < 16u * g + 16u; l++) {
            let low = i32((byte_at(block + 32u + 32u * h + l) >> (2u * j)) & 3u);
            let high_set = (byte_at(block + l) & (1u << (4u * h + j))) != 0u;
            v[l] = dl * f32(low - select(4, 0, high_set));
        }
    }
    return v;
}
