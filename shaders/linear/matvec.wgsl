// y_i = W_i x for one token (decode) and up to SEGMENTS matrices that read the same x: the
// projections of one input in one dispatch (GDN qkv, gate, beta, alpha; attention q, k,
// v; the router and the shared expert's gate), or the pieces of one matrix split over
// several bindings. Each W_i is a GGUF weight kept in its own block format (its reader is
// joined once per binding: rows_dot_0 reads weights_0).
//
// NORM folds a norm of x in, each workgroup recomputing its scales (a few thousand floats,
// cheaper than a dispatch and a round trip through memory): 1 a block's RMSNorm, x read as
// x / rms(x) * norm_w; 2 the Gated DeltaNet output norm, head h read as
// x_h / rms(x_h) * norm_w * silu(z_h). ADD adds into y (a block's output into the residual
// stream).
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x) owns ROWS consecutive rows of the
// segment whose workgroups it falls in (linear/matvec_rows.wgsl). Mirrors
// model::reference::linear::matvec over loader::dequant::dequantize, after
// reference::norm::rms_norm (NORM 1) or reference::norm::gated_rms_norm per head (NORM 2),
// plus y with ADD.

struct Segment {
    // The first workgroup of this segment; segments start on workgroup boundaries.
    first_wg: u32,
    rows: u32,
    row_bytes: u32,
    // Byte offset of row 0 in its weight binding.
    weight_offset: u32,
    y_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Params {
    // 32-element units per row (cols / 32).
    units: u32,
    x_offset: u32,
    eps: f32,
    n_segments: u32,
    segments: array<Segment, SEGMENTS>,
    // NORM 2: the heads' length and count.
    head_dim: u32,
    n_heads: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [rows_i, row_bytes_i] GGUF blocks, as u32 words (unused segments bind weights_0)
@group(0) @binding(1) var<storage, read> weights_0: array<u32>;
@group(0) @binding(2) var<storage, read> weights_1: array<u32>;
@group(0) @binding(3) var<storage, read> weights_2: array<u32>;
@group(0) @binding(4) var<storage, read> weights_3: array<u32>;
// [cols] f32, read four floats at a time (x_offset is a multiple of 4)
@group(0) @binding(5) var<storage, read> x: array<vec4<f32>>;
// [cols] f32 with NORM 1, [head_dim] f32 with NORM 2: the norm's weight (x itself without
// one, unread)
@group(0) @binding(6) var<storage, read> norm_w: array<vec4<f32>>;
// [cols] f32 with NORM 2: the output gate (x itself otherwise, unread)
@group(0) @binding(7) var<storage, read> z: array<vec4<f32>>;
// [rows_i] f32 each (unused segments bind y_0)
@group(0) @binding(8) var<storage, read_write> y_0: array<f32>;
@group(0) @binding(9) var<storage, read_write> y_1: array<f32>;
@group(0) @binding(10) var<storage, read_write> y_2: array<f32>;
@group(0) @binding(11) var<storage, read_write> y_3: array<f32>;

var<workgroup> head_scale: array<f32, MAX_HEADS>;

fn x_at(i: u32) -> vec4<f32> {
    let j = i - (params.x_offset >> 2u);
    if (NORM == 1u) {
        return x[i] * norm_w[j];
    }
    if (NORM == 2u) {
        let hd4 = params.head_dim >> 2u;
        let g = z[i];
        return x[i] * head_scale[j / hd4] * norm_w[j % hd4] * (g / (1.0 + exp(-g)));
    }
    return x[i];
}

// NORM 2: each head's 1 / rms, one invocation per head walking its floats.
fn head_scales(lid: u32) {
    let base = params.x_offset >> 2u;
    let hd4 = params.head_dim >> 2u;
    for (var h = lid; h < params.n_heads; h += WG) {
        var sum_sq = 0.0;
        for (var i = 0u; i < hd4; i++) {
            let v = x[base + h * hd4 + i];
            sum_sq += dot(v, v);
        }
        head_scale[h] = 1.0 / sqrt(sum_sq / f32(params.head_dim) + params.eps);
    }
    workgroupBarrier();
}

fn store(seg: u32, i: u32, v: f32) {
    switch seg {
        case 0u: { y_0[i] = v + select(0.0, y_0[i], ADD == 1u); }
        case 1u: { y_1[i] = v + select(0.0, y_1[i], ADD == 1u); }
        case 2u: { y_2[i] = v + select(0.0, y_2[i], ADD == 1u); }
        default: { y_3[i] = v + select(0.0, y_3[i], ADD == 1u); }
    }
}

@compute @workgroup_size(WG)
fn matvec(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wg.x + wg.y * nwg.x;
    var scale = 1.0;
    if (NORM == 1u) {
        scale = row_norm_scale(lid, params.x_offset >> 2u, params.units, params.eps);
    }
    if (NORM == 2u) {
        head_scales(lid);
    }
    var seg = 0u;
    for (var i = 1u; i < params.n_segments; i++) {
        if (w >= params.segments[i].first_wg) {
            seg = i;
        }
    }
    let s = params.segments[seg];
    let first = (w - s.first_wg) * ROWS;
    let u = params.units;
    let xb = params.x_offset;
    var v = 0.0;
    switch seg {
        case 0u: { v = rows_dot_0(first, lid, s.rows, u, s.row_bytes, s.weight_offset, xb); }
        case 1u: { v = rows_dot_1(first, lid, s.rows, u, s.row_bytes, s.weight_offset, xb); }
        case 2u: { v = rows_dot_2(first, lid, s.rows, u, s.row_bytes, s.weight_offset, xb); }
        default: { v = rows_dot_3(first, lid, s.rows, u, s.row_bytes, s.weight_offset, xb); }
    }
    let row = first + lid / (WG / ROWS);
    if (lid % (WG / ROWS) == 0u && row < s.rows) {
        store(seg, s.y_offset + row, v * scale);
    }
}
