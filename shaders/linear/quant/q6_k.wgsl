// block_q6_K (210 bytes): ql[128], qh[64], i8 scales[16], f16 d. Unit s: half h = s / 4,
// k = s % 4; element l: nibble k / 2 of ql[64h + 32(k % 2) + l] plus bits 2k.. of
// qh[32h + l] as bits 4-5; group 8h + 2k + l / 16; y = d * scale * (q - 32).
const BLOCK_BYTES: u32 = 210u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let h = sub / 4u;
    let k = sub % 4u;
    let ql = block + 64u * h + 32u * (k % 2u);
    let qh = block + 128u + 32u * h;
    let d = f16_at(block + 208u);
    for (var l = 0u; l < 32u; l++) {
        let low = (byte_at(ql + l) >> (4u * (k / 2u))) & 0xFu;
        let high = (byte_at(qh + l) >> (2u * k)) & 3u;
        let sc = i8_of(byte_at(block + 192u + 8u * h + 2u * k + l / 16u));
        v[l] = d * sc * f32(i32(low | (high << 4u)) - 32);
    }
    return v;
}
