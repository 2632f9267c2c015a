// Byte-addressed reads from a tensor kept in its GGUF block format.
//
// Blocks of most ggml types are not a multiple of 4 bytes (q4_0: 18, q8_0: 34, q6_K: 210),
// so rows and blocks start at any byte; WGSL storage is word-addressed, so every field is
// read through these helpers. The kernel declares the array they read:
//   @group(0) @binding(1) var<storage, read> weights: array<u32>;

fn byte_at(b: u32) -> u32 {
    return (weights[b >> 2u] >> ((b & 3u) * 8u)) & 0xFFu;
}

// Little-endian u16 at any byte offset (it straddles two words when b % 4 == 3).
fn u16_at(b: u32) -> u32 {
    if ((b & 3u) == 3u) {
        return byte_at(b) | (byte_at(b + 1u) << 8u);
    }
    return (weights[b >> 2u] >> ((b & 3u) * 8u)) & 0xFFFFu;
}

fn f16_at(b: u32) -> f32 {
    return unpack2x16float(u16_at(b)).x;
}

// A little-endian u32 at a 4-byte aligned offset.
fn u32_at_aligned(b: u32) -> u32 {
    return weights[b >> 2u];
}

// Four consecutive bytes at any offset, as one little-endian u32.
fn u32_at(b: u32) -> u32 {
    let s = (b & 3u) * 8u;
    if (s == 0u) {
        return weights[b >> 2u];
    }
    return (weights[b >> 2u] >> s) | (weights[(b >> 2u) + 1u] << (32u - s));
}

fn i8_of(v: u32) -> f32 {
    return f32(i32(v << 24u) >> 24u);
}

// The four bytes of a word as unsigned values, lowest byte first.
fn bytes_f32(q: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(0xFFu));
}

// The four bytes of a word as signed (two's complement) values, lowest byte first.
fn bytes_i8_f32(q: u32) -> vec4<f32> {
    let shifted = vec4<i32>(bitcast<i32>(q << 24u), bitcast<i32>(q << 16u), bitcast<i32>(q << 8u), bitcast<i32>(q));
    return vec4<f32>(shifted >> vec4<u32>(24u));
}

// Bits 0..4 of `b` as bit 4 of bytes 0..4: the fifth bits of four q5_0 / q5_1 quants, to OR
// into their nibbles.
fn fifth_bits4(b: u32) -> u32 {
    return ((b & 1u) | ((b & 2u) << 7u) | ((b & 4u) << 14u) | ((b & 8u) << 21u)) << 4u;
}

// The quants of elements e .. e + 4 (e a multiple of 4) of a unit whose 16 bytes of nibbles
// start at byte qs, low nibbles elements 0 .. 16 and high ones 16 .. 32 (q4_0, q4_1, q5_0,
// q5_1), one a byte.
fn nibbles4(qs: u32, e: u32) -> u32 {
    return (u32_at(qs + e % 16u) >> (4u * (e / 16u))) & 0x0F0F0F0Fu;
}

// Entry q (0 .. 16) of a 16-entry table of signed bytes packed four a word (entry q is byte
// q % 4 of word q / 4): a code book a vector picks by a computed index, where a const array
// indexed at run time becomes an array the shader fills at every call.
fn packed_level(table: vec4<u32>, q: u32) -> f32 {
    return f32(bitcast<i32>(table[q >> 2u] << (24u - 8u * (q & 3u))) >> 24u);
}

// The table entries of the nibbles at bits 0, 8, 16 and 24 of `q`.
fn packed_levels4(table: vec4<u32>, q: u32) -> vec4<f32> {
    return vec4<f32>(
        packed_level(table, q & 0xFu),
        packed_level(table, (q >> 8u) & 0xFu),
        packed_level(table, (q >> 16u) & 0xFu),
        packed_level(table, (q >> 24u) & 0xFu),
    );
}

// The table entries of the nibbles at bits 0, 8, 16 and 24 of `q`, as the bytes of one word
// (the packed 8-bit form of packed_levels4).
fn packed_level_bytes4(table: vec4<u32>, q: u32) -> u32 {
    var out = 0u;
    for (var k = 0u; k < 4u; k++) {
        let n = (q >> (8u * k)) & 0xFu;
        out |= ((table[n >> 2u] >> (8u * (n & 3u))) & 0xFFu) << (8u * k);
    }
    return out;
}

// The quants of elements e .. e + 8 of a q5_0 / q5_1 unit, one a byte (nibbles4 with the
// fifth bits of the unit's qh word).
fn q5_quants8(qs: u32, qh: u32, e: u32) -> vec2<u32> {
    return vec2<u32>(nibbles4(qs, e) | fifth_bits4(qh >> e), nibbles4(qs, e + 4u) | fifth_bits4(qh >> (e + 4u)));
}
