// IQ4_NL's code book (iq4_nl and iq4_xs): level q of -127 .. 113 is byte q % 4 of word
// q / 4, a signed byte. A vector picks its word by a computed index; a const array indexed
// at run time becomes an array the shader fills at every call.
const IQ4_WORDS = vec4<u32>(0xBFAD9881u, 0xF6EADDCFu, 0x26190D01u, 0x71594535u);

fn iq4_level(q: u32) -> f32 {
    return f32(bitcast<i32>(IQ4_WORDS[q >> 2u] << (24u - 8u * (q & 3u))) >> 24u);
}

// The levels of the nibbles at bits 0, 8, 16 and 24 of `q`.
fn iq4_levels4(q: u32) -> vec4<f32> {
    return vec4<f32>(
        iq4_level(q & 0xFu),
        iq4_level((q >> 8u) & 0xFu),
        iq4_level((q >> 16u) & 0xFu),
        iq4_level((q >> 24u) & 0xFu),
    );
}
