// block_q6_K (210 bytes): ql[128], qh[64], i8 scales[16], f16 d. Unit s: half h = s / 4,
// k = s % 4; element l: nibble k / 2 of ql[64h + 32(k % 2) + l] plus bits 2k.. of
// qh[32h + l] as bits 4-5; group 8h + 2k + l / 16; y = d * scale * (q - 32).
const BLOCK_BYTES: u32 = 210u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let h = sub / 4u;
    let k = sub % 4u;
    let ql = block + 64u * h + 32u * (k % 2u);
    let qh = block + 128u + 32u * h;
    var acc = 0.0;
    for (var g = 0u; g < 2u; g++) {
        var qx = 0.0;
        for (var l = 16u * g; l < 16u * g + 16u; l++) {
            let low = (byte_at(ql + l) >> (4u * (k / 2u))) & 0xFu;
            let high = (byte_at(qh + l) >> (2u * k)) & 3u;
            qx += f32(i32(low | (high << 4u)) - 32) * x[xb + l];
        }
        acc += i8_of(byte_at(block + 192u + 8u * h + 2u * k + g)) * qx;
    }
    return f16_at(block + 208u) * acc;
}
