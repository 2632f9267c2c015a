// The operations of linear/coop/subgroup.wgsl written out in plain WGSL: a team is 32
// consecutive invocations, each holding SIZE * SIZE / 32 elements of an accumulator block,
// and the loads read a_half and b_half with the same layouts and strides as the
// cooperative loads. The runtime never picks it: it is there so that the kernels on
// cooperative matrices (staging, block ownership, strides, the write-out) are
// conformance-tested on every device with f16, with the f16 operands and f32 sums of the
// real thing.

const TEAM_LANES: u32 = 32u;
const ACC_EACH: u32 = SIZE * SIZE / TEAM_LANES;

struct Lanes {
    @builtin(local_invocation_index) index: u32,
}

fn team_of(lanes: Lanes) -> u32 {
    return lanes.index / TEAM_LANES;
}

fn teams_of(lanes: Lanes) -> u32 {
    return WG / TEAM_LANES;
}

// Element lane + TEAM_LANES * i of the block, in row-major order (token, row).
alias Acc = array<f32, ACC_EACH>;

fn acc_zero() -> Acc {
    return Acc();
}

fn acc_mma(acc: Acc, a_at: u32, b_at: u32, lanes: Lanes) -> Acc {
    var out = acc;
    for (var i = 0u; i < ACC_EACH; i++) {
        let e = lanes.index % TEAM_LANES + TEAM_LANES * i;
        // A row-major: (m, k) at a_at + m * A_STRIDE + k; B column-major: (k, c) at
        // b_at + c * B_STRIDE + k.
        let a_row = a_at + (e / SIZE) * A_STRIDE;
        let b_col = b_at + (e % SIZE) * B_STRIDE;
        for (var k = 0u; k < SIZE; k++) {
            out[i] += f32(a_half[a_row + k]) * f32(b_half[b_col + k]);
        }
    }
    return out;
}

fn acc_store(acc: Acc, at: u32, lanes: Lanes) {
    for (var i = 0u; i < ACC_EACH; i++) {
        let e = lanes.index % TEAM_LANES + TEAM_LANES * i;
        c_tile[at + (e / SIZE) * C_STRIDE + e % SIZE] = acc[i];
    }
}
