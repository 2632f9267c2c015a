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

// The product of block element e's row of A and column of B, B column-major (`rows`
// false: (k, c) at b_at + c * b_stride + k) or row-major (true: at b_at + k * b_stride + c).
fn block_dot(e: u32, a_at: u32, a_stride: u32, b_at: u32, b_stride: u32, rows: bool) -> f32 {
    let a_row = a_at + (e / SIZE) * a_stride;
    var s = 0.0;
    for (var k = 0u; k < SIZE; k++) {
        var b_k = b_at + (e % SIZE) * b_stride + k;
        if (rows) {
            b_k = b_at + k * b_stride + e % SIZE;
        }
        s += f32(a_half[a_row + k]) * f32(b_half[b_k]);
    }
    return s;
}

// acc + the A block times the B block, B column-major or (`rows`) row-major.
fn block_mma(acc: Acc, a_at: u32, a_stride: u32, b_at: u32, b_stride: u32, rows: bool, lanes: Lanes) -> Acc {
    var out = acc;
    for (var i = 0u; i < ACC_EACH; i++) {
        let e = lanes.index % TEAM_LANES + TEAM_LANES * i;
        out[i] += block_dot(e, a_at, a_stride, b_at, b_stride, rows);
    }
    return out;
}

fn acc_mma(acc: Acc, a_at: u32, a_stride: u32, b_at: u32, b_stride: u32, lanes: Lanes) -> Acc {
    return block_mma(acc, a_at, a_stride, b_at, b_stride, false, lanes);
}

fn acc_mma_rows(acc: Acc, a_at: u32, a_stride: u32, b_at: u32, b_stride: u32, lanes: Lanes) -> Acc {
    return block_mma(acc, a_at, a_stride, b_at, b_stride, true, lanes);
}

fn acc_store(acc: Acc, at: u32, stride: u32, lanes: Lanes) {
    for (var i = 0u; i < ACC_EACH; i++) {
        let e = lanes.index % TEAM_LANES + TEAM_LANES * i;
        c_tile[at + (e / SIZE) * stride + e % SIZE] = acc[i];
    }
}
