// The order the top-k picks rank (value, index) pairs in: larger value first, then lower
// index (the references' sort), shared by the router (moe/moe_route.wgsl) and the sampler
// (sample/top_k_pick.wgsl).

// a = (av, ai) ranks before b = (bv, bi)?
fn before(av: f32, ai: u32, bv: f32, bi: u32) -> bool {
    return av > bv || (av == bv && ai < bi);
}
