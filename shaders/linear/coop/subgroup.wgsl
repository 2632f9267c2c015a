// The cooperative-matrix operations of the kernels on cooperative matrices
// (linear/matmul_coop_tile.wgsl, attention/flash_prefill_gqa.wgsl) on the adapter's
// matrices (the types from linear/coop/mat16.wgsl or mat8.wgsl), each by one whole
// subgroup: a team is a subgroup. The kernel defines the operands a_half (A, row-major,
// A_STRIDE a row) and b_half (B, column-major, B_STRIDE a column) and the f32 output
// c_tile (row-major, C_STRIDE a row).

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

fn acc_zero() -> Acc {
    return Acc();
}

// acc + the A block of a_half from a_at times the B block of b_half from b_at.
fn acc_mma(acc: Acc, a_at: u32, b_at: u32, lanes: Lanes) -> Acc {
    let a = coopLoadT<CoopA>(&a_half[a_at], A_STRIDE);
    let b = coopLoad<CoopB>(&b_half[b_at], B_STRIDE);
    return coopMultiplyAdd(a, b, acc);
}

fn acc_store(acc: Acc, at: u32, lanes: Lanes) {
    coopStoreT(acc, &c_tile[at], C_STRIDE);
}
