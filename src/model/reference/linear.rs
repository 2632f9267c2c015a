//! Dense products in plain f32.

/// `C = A B` for row-major `A` [m, k] and `B` [k, n]; returns row-major `C` [m, n].
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert_eq!(a.len(), m * k, "matmul: A is not [{m}, {k}]");
    assert_eq!(b.len(), k * n, "matmul: B is not [{k}, {n}]");
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for p in 0..k {
            let aip = a[i * k + p];
            for j in 0..n {
                c[i * n + j] += aip * b[p * n + j];
            }
        }
    }
    c
}

/// `A^T` for row-major `A` [m, n]; returns row-major [n, m].
pub fn transpose(a: &[f32], m: usize, n: usize) -> Vec<f32> {
    assert_eq!(a.len(), m * n, "transpose: A is not [{m}, {n}]");
    let mut t = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = a[i * n + j];
        }
    }
    t
}

/// `y = W x` for a GGUF weight of ggml shape {cols, rows}: row `r` is `cols` contiguous values.
pub fn matvec(w: &[f32], x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(w.len(), rows * cols, "matvec: W is not {{{cols}, {rows}}}");
    assert_eq!(
        x.len(),
        cols,
        "matvec: x has {} values, W has {cols} columns",
        x.len()
    );
    w.chunks_exact(cols)
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

/// Elements per block of [`round_to_int8`].
pub const INT8_BLOCK: usize = 16;

/// `x` as the 8-bit matmul tiles see it: each block of [`INT8_BLOCK`] elements rounded to
/// `d round(x / d)`, `d = max |x| / 127` (half to even), so that `matvec(w, round_to_int8(x))`
/// is what `shaders/linear/matmul_int8_tile.wgsl` computes up to the order of its sums.
pub fn round_to_int8(x: &[f32]) -> Vec<f32> {
    x.chunks(INT8_BLOCK)
        .flat_map(|block| {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            let d = amax / 127.0;
            block.iter().map(move |v| d * (v * inv).round_ties_even())
        })
        .collect()
}
