// What the two passes of split-KV attention share (attention/flash_decode.wgsl and
// attention/flash_decode_combine.wgsl).

struct Params {
    n_tokens: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    // Floats per token and per head in q_in, for the gate.
    q_stride: u32,
    q_head_stride: u32,
    // 1 when attn_q carries a sigmoid gate after each head's query.
    gated: u32,
    // Row of token 0 in q_in (the gate) and out (a batched step's sequence).
    first_row: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
    _pad4: u32,
}

const NEG_BIG: f32 = -3.4028235e38;
