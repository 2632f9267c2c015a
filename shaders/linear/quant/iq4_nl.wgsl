// block_iq4_nl (18 bytes): f16 d, 16 bytes of nibbles indexing a non-uniform code book.
const BLOCK_BYTES: u32 = 18u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = f16_at(block);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 2u + j);
        v[j] = d * iq4_level(q & 0xFu);
        v[j + 16u] = d * iq4_level(q >> 4u);
    }
    return v;
}

// For the nibble-table readers (linear/dot/nibble_table.wgsl and its siblings): the unit's
// scale, the byte its nibbles start at, and their levels.
fn nibble_scale(block: u32) -> f32 {
    return f16_at(block);
}

const NIBBLES_AT: u32 = 2u;

fn nibble_levels4(q: u32) -> vec4<f32> {
    return iq4_levels4(q);
}

fn nibble_level_bytes4(q: u32) -> u32 {
    return iq4_level_bytes4(q);
}
