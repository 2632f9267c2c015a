// block_iq4_xs (136 bytes): f16 d, u16 scales_h, scales_l[4], qs[128]. Unit s is group s:
// a 6-bit scale (nibble s % 2 of scales_l[s / 2], bits 2s.. of scales_h), 16 bytes of
// nibbles into the IQ4_NL code book; y = d * (scale - 32) * level.
const BLOCK_BYTES: u32 = 136u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let low = (byte_at(block + 4u + sub / 2u) >> (4u * (sub % 2u))) & 0xFu;
    let high = (u16_at(block + 2u) >> (2u * sub)) & 3u;
    let dl = f16_at(block) * f32(i32(low | (high << 4u)) - 32);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 8u + 16u * sub + j);
        v[j] = dl * iq4_level(q & 0xFu);
        v[j + 16u] = dl * iq4_level(q >> 4u);
    }
    return v;
}
