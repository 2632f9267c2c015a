// Top-k sampling, second pass: one workgroup merges the partials, then invocation 0 applies
// the temperature, the top-p and min-p cuts and the host's draw (sample/top_k_pick.wgsl).
// Mirrors model::reference::sample::sample_top_k_top_p.

@group(0) @binding(0) var<storage, read> params: Params;
// [n_partials, k] (value, index as f32 bits), best first
@group(0) @binding(1) var<storage, read> partials: array<vec2<f32>>;
// [1] u32
@group(0) @binding(2) var<storage, read_write> token: array<u32>;

@compute @workgroup_size(WG)
fn top_k_sample(@builtin(local_invocation_index) lid: u32) {
    let m = params.n_partials * params.k;
    var last_v = 3.4028235e38;
    var last_i = NO_INDEX;
    for (var round = 0u; round < params.k; round++) {
        var bv = NEG_BIG;
        var bi = NO_INDEX;
        for (var j = lid; j < m; j += WG) {
            let c = partials[j];
            let ci = bitcast<u32>(c.y);
            if (ci != NO_INDEX && before(last_v, last_i, c.x, ci) && before(c.x, ci, bv, bi)) {
                bv = c.x;
                bi = ci;
            }
        }
        pick(lid, round, bv, bi);
        last_v = chosen_v[round];
        last_i = chosen_i[round];
    }
    if (lid != 0u) {
        return;
    }
    // Candidates are sorted; weights relative to the best, at the temperature.
    var k = params.k;
    for (var j = 0u; j < params.k; j++) {
        if (chosen_i[j] == NO_INDEX) {
            k = j;
            break;
        }
    }
    var total = 0.0;
    for (var j = 0u; j < k; j++) {
        total += exp((chosen_v[j] - chosen_v[0]) / params.temperature);
    }
    var kept = 0u;
    var mass = 0.0;
    var kept_mass = 0.0;
    for (var j = 0u; j < k; j++) {
        let w = exp((chosen_v[j] - chosen_v[0]) / params.temperature);
        if (j > 0u && w < params.min_p) {
            break;
        }
        kept += 1u;
        kept_mass += w;
        mass += w / total;
        if (mass >= params.top_p) {
            break;
        }
    }
    let threshold = params.u * kept_mass;
    var acc = 0.0;
    var pick_j = kept - 1u;
    for (var j = 0u; j < kept; j++) {
        acc += exp((chosen_v[j] - chosen_v[0]) / params.temperature);
        if (acc >= threshold) {
            pick_j = j;
            break;
        }
    }
    token[0] = chosen_i[pick_j];
}
