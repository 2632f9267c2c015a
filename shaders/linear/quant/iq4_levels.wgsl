// IQ4_NL's code book (iq4_nl and iq4_xs), -127 .. 113, packed for common/bytes.wgsl's
// packed_level.
const IQ4_WORDS = vec4<u32>(0xBFAD9881u, 0xF6EADDCFu, 0x26190D01u, 0x71594535u);

fn iq4_level(q: u32) -> f32 {
    return packed_level(IQ4_WORDS, q);
}

fn iq4_levels4(q: u32) -> vec4<f32> {
    return packed_levels4(IQ4_WORDS, q);
}

fn iq4_level_bytes4(q: u32) -> u32 {
    return packed_level_bytes4(IQ4_WORDS, q);
}
