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
