// block_iq4_xs (136 bytes): f16 d, u16 scales_h, scales_l[4], qs[128]. Unit s is group s:
// a 6-bit scale (nibble s % 2 of scales_l[s / 2], bits 2s.. of scales_h), 16 bytes of
// nibbles into the IQ4_NL code book; y = d * (scale - 32) * level.
const BLOCK_BYTES: u32 = 136u;
const UNITS_PER_BLOCK: u32 = 8u;
const IQ4_LEVELS = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                  1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let low = (byte_at(block + 4u + sub / 2u) >> (4u * (sub % 2u))) & 0xFu;
    let high = (u16_at(block + 2u) >> (2u * sub)) & 3u;
    let dl = f16_at(block) * f32(i32(low | (high << 4u)) - 32);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 8u + 16u * sub + j);
        v[j] = dl * IQ4_LEVELS[q & 0xFu];
        v[j + 16u] = dl * IQ4_LEVELS[q >> 4u];
    }
    return v;
}
