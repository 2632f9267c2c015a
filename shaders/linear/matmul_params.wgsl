// The params of both matmul kernels (matmul, matmul_experts) in every tile form.

struct Params {
    rows: u32,
    units: u32,
    row_bytes: u32,
    n_tokens: u32,
    // Floats per token in x, and in y.
    x_stride: u32,
    y_stride: u32,
    x_offset: u32,
    y_offset: u32,
    // matmul_experts: this buffer holds experts first_expert.. (each `rows` rows); slot s
    // reads x row s / x_group and writes y row s.
    first_expert: u32,
    x_group: u32,
    _pad0: u32,
    _pad1: u32,
}
