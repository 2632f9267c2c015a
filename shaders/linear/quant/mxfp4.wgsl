// block_mxfp4 (17 bytes): an E8M0 exponent, 16 bytes of E2M1 nibbles (doubled to integers,
// so the scale is halved: 2^(e - 128)).
const BLOCK_BYTES: u32 = 17u;
const UNITS_PER_BLOCK: u32 = 1u;
// The E2M1 values doubled, 0 .. 12 and their negatives, packed for common/bytes.wgsl's
// packed_level.
const FP4_WORDS = vec4<u32>(0x03020100u, 0x0C080604u, 0xFDFEFF00u, 0xF4F8FAFCu);

fn fp4_level(q: u32) -> f32 {
    return packed_level(FP4_WORDS, q);
}


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
        v[j] = fp4_level(q & 0xFu) * d;
        v[j + 16u] = fp4_level(q >> 4u) * d;
    }
    return v;
}

// For the nibble-table readers (linear/dot/nibble_table.wgsl and its siblings): the unit's
// scale, the byte its nibbles start at, and their levels.
fn nibble_scale(block: u32) -> f32 {
    return e8m0_half(byte_at(block));
}

const NIBBLES_AT: u32 = 1u;

fn nibble_levels4(q: u32) -> vec4<f32> {
    return packed_levels4(FP4_WORDS, q);
}

fn nibble_level_bytes4(q: u32) -> u32 {
    return packed_level_bytes4(FP4_WORDS, q);
}
