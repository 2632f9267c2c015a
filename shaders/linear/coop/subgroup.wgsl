// The cooperative-matrix operations of the kernels on cooperative matrices
// (linear/matmul_coop_tile.wgsl, attention/flash_prefill_gqa.wgsl) on the adapter's
// matrices (the types from linear/coop/mat16.wgsl or mat8.wgsl), each by one whole
// subgroup: a team is a subgroup. The kernel defines the f16 operands a_half and b_half
// and the f32 c_tile that blocks are stored to.

struct Lanes {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_id) team: u32,
    @builtin(num_subgroups) teams: u32,
}

fn team_of(lanes: Lanes) -> u32 {
    return lanes.team;
}

fn teams_of(lanes: Lanes) -> u32 {
    return lanes.teams;
}

// Zeros to start accumulators from: WGSL zero-fills workgroup memory before the first
// invocation runs, and Metal does not promise that `{}` zero-fills a simdgroup matrix.
var<workgroup> coop_zeros: array<f32, SIZE * SIZE>;

fn acc_zero() -> Acc {
    return coopLoadT<Acc>(&coop_zeros[0], SIZE);
}

// acc + the A block of a_half from a_at (row-major, a_stride a row) times the B block of
// b_half from b_at (column-major, b_stride a column).
fn acc_mma(acc: Acc, a_at: u32, a_stride: u32, b_at: u32, b_stride: u32, lanes: Lanes) -> Acc {
    let a = coopLoadT<CoopA>(&a_half[a_at], a_stride);
    let b = coopLoad<CoopB>(&b_half[b_at], b_stride);
    return coopMultiplyAdd(a, b, acc);
}

// acc_mma with the B block row-major (b_stride a row).
fn acc_mma_rows(acc: Acc, a_at: u32, a_stride: u32, b_at: u32, b_stride: u32, lanes: Lanes) -> Acc {
    let a = coopLoadT<CoopA>(&a_half[a_at], a_stride);
    let b = coopLoadT<CoopB>(&b_half[b_at], b_stride);
    return coopMultiplyAdd(a, b, acc);
}

// The block into c_tile from `at`, row-major, `stride` a row.
fn acc_store(acc: Acc, at: u32, stride: u32, lanes: Lanes) {
    coopStoreT(acc, &c_tile[at], stride);
}
