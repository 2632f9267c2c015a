//! Normalisations in plain f32.

/// `y = x / sqrt(mean(x^2) + eps) * w`. The GGUF's norm weights already hold `1 + w` for
/// these models, so the multiplication is plain.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    assert_eq!(
        x.len(),
        w.len(),
        "rms_norm: {} values, {} weights",
        x.len(),
        w.len()
    );
    let scale = rms_scale(x, eps);
    x.iter().zip(w).map(|(v, w)| v * scale * w).collect()
}

/// `1 / sqrt(mean(x^2) + eps)`.
pub fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    1.0 / (mean_sq + eps).sqrt()
}

/// `y = x / max(||x||, eps)`, ggml's `l2_norm` (the gated delta net normalises q and k with
/// the model's RMS epsilon).
pub fn l2_norm(x: &[f32], eps: f32) -> Vec<f32> {
    let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
    let scale = 1.0 / norm.max(eps);
    x.iter().map(|v| v * scale).collect()
}

/// `silu(x) = x * sigmoid(x)`.
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `softplus(x) = ln(1 + e^x)`, linear above 20, computed as ggml does (no overflow).
pub fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        (1.0 + x.exp()).ln()
    }
}

/// The GDN output norm: `rms_norm(y) * w * silu(z)`, one head of `y` and `z` at a time.
pub fn gated_rms_norm(y: &[f32], w: &[f32], z: &[f32], eps: f32) -> Vec<f32> {
    assert_eq!(y.len(), z.len(), "gated_rms_norm: y and z differ in length");
    rms_norm(y, w, eps)
        .into_iter()
        .zip(z)
        .map(|(n, &z)| n * silu(z))
        .collect()
}
