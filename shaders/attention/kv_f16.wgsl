// KV cache elements stored as f16, two per u32 (pack2x16float: half the memory and
// bandwidth of f32, no shader-f16 feature needed).
alias KvWord = u32;

// Stores elements i and i + 1 (i even) of a cache row.
fn store_kv2(is_k: bool, i: u32, a: f32, b: f32) {
    let word = pack2x16float(vec2<f32>(a, b));
    if (is_k) {
        k_cache[i >> 1u] = word;
    } else {
        v_cache[i >> 1u] = word;
    }
}

fn load_k(i: u32) -> f32 {
    return unpack2x16float(k_cache[i >> 1u])[i & 1u];
}

fn load_v(i: u32) -> f32 {
    return unpack2x16float(v_cache[i >> 1u])[i & 1u];
}

// Elements i and i + 1 (i even) of the K cache.
fn load_k2(i: u32) -> vec2<f32> {
    return unpack2x16float(k_cache[i >> 1u]);
}

// Elements i and i + 1 (i even) of the V cache.
fn load_v2(i: u32) -> vec2<f32> {
    return unpack2x16float(v_cache[i >> 1u]);
}
