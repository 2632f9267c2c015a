// The adapter's 8 x 8 cooperative matrices: f16 operands, f32 accumulator.

alias CoopA = coop_mat8x8<f16, A>;
alias CoopB = coop_mat8x8<f16, B>;
alias Acc = coop_mat8x8<f32, C>;
