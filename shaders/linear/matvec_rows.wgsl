// The row dot products both matvec kernels share: ROWS consecutive rows per workgroup, TPR =
// WG / ROWS invocations per row striding over its 32-element units (unit_dot, from the
// type's file in linear/dot/ or the generic linear/unit_dot.wgsl), their partials added in
// a short tree (enough work per invocation, one barrier tree per workgroup rather than a
// full-workgroup reduction per row). WG and ROWS come from Rust (ops/linear/matvec.rs).
// Reads the globals `params`, `weights`, `x` and writes `y` of the kernel's file.

struct Params {
    rows: u32,
    // 32-element units per row (cols / 32).
    units: u32,
    row_bytes: u32,
    // Byte offset of row 0 in `weights` (a split piece starts at 0).
    weight_offset: u32,
    x_offset: u32,
    y_offset: u32,
    // matvec_experts: the experts this buffer holds are first_expert.. (+ n_experts), each
    // `rows` rows; slot s reads x at x_offset + (s / x_group) * x_stride (x_group = k when
    // a token's k slots share its input, 1 when each slot has its own) and writes
    // y_offset + s * y_stride.
    first_expert: u32,
    n_experts: u32,
    x_stride: u32,
    y_stride: u32,
    x_group: u32,
    _pad0: u32,
}

const TPR: u32 = WG / ROWS;

var<workgroup> partial: array<f32, WG>;

fn rows_dot(first: u32, lid: u32, weight_base: u32, x_base: u32, y_base: u32) {
    let lane = lid % TPR;
    let row = first + lid / TPR;
    var acc = 0.0;
    if (row < params.rows) {
        let base = weight_base + row * params.row_bytes;
        for (var u = lane; u < params.units; u += TPR) {
            let block = base + (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
            acc += unit_dot(block, u % UNITS_PER_BLOCK, x_base + 32u * u);
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < params.rows) {
        y[y_base + row] = partial[lid];
    }
}
