// Where a routed expert's weights are read (runtime/experts.rs): its slot in the VRAM pool
// when the layer's location table names one, else its own slab of the host copy. A
// dispatch binds one piece of one of them (`from_pool`, slabs first..first + count) and
// leaves the experts another piece holds to that piece's dispatch, so each expert is read
// from exactly one place. The including kernel binds `location`.

const NOT_RESIDENT: u32 = 0xffffffffu;

// Expert e's slab within the bound piece, or NOT_RESIDENT when another piece reads it.
fn expert_slab(e: u32, from_pool: u32, first: u32, count: u32) -> u32 {
    let at = location[e];
    var slab = e;
    if (from_pool == 1u) {
        slab = at;
    } else if (at != NOT_RESIDENT) {
        return NOT_RESIDENT;
    }
    if (slab == NOT_RESIDENT || slab < first || slab - first >= count) {
        return NOT_RESIDENT;
    }
    return slab - first;
}
