// The adapter's 16 x 16 cooperative matrices: f16 operands, f32 accumulator.

alias CoopA = coop_mat16x16<f16, A>;
alias CoopB = coop_mat16x16<f16, B>;
alias Acc = coop_mat16x16<f32, C>;
