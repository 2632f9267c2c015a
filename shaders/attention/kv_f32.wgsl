// KV cache elements stored as f32 (adapters without f16 storage, or by choice).
alias KvWord = f32;

// Stores elements i and i + 1 (i even) of a cache row.
fn store_kv2(is_k: bool, i: u32, a: f32, b: f32) {
    if (is_k) {
        k_cache[i] = a;
        k_cache[i + 1u] = b;
    } else {
        v_cache[i] = a;
        v_cache[i + 1u] = b;
    }
}

fn load_k(i: u32) -> f32 {
    return k_cache[i];
}

fn load_v(i: u32) -> f32 {
    return v_cache[i];
}

// Elements i and i + 1 (i even) of the K cache.
fn load_k2(i: u32) -> vec2<f32> {
    return vec2<f32>(k_cache[i], k_cache[i + 1u]);
}

// Elements i and i + 1 (i even) of the V cache.
fn load_v2(i: u32) -> vec2<f32> {
    return vec2<f32>(v_cache[i], v_cache[i + 1u]);
}
