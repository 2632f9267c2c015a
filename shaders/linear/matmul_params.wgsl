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
    // matmul_experts: this buffer holds slabs first_slab.. (+ slabs, each `rows` rows) of
    // the pool (from_pool 1) or the host copy (moe/expert_slab.wgsl); slot s reads x row
    // s / x_group and writes y row s.
    first_slab: u32,
    x_group: u32,
    slabs: u32,
    from_pool: u32,
}
