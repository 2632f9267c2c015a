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
