// The weight staging every matmul tile form shares: unit u of the tile's TILE weight rows
// from row0 (weights from byte `slab` on) into the form's workgroup memory, through the
// type's stage_unit (which calls the float forms' stage4, or the 8-bit form's stage_quants
// and stage_factors): four invocations a row, 8 values each; rows past the matrix as zeros
// (the form's stage_zeros).

fn stage_weights(row0: u32, slab: u32, u: u32, lid: u32) {
    for (var s = lid; s < TILE * 4u; s += WG) {
        let r = s / 4u;
        let part = s % 4u;
        let row = row0 + r;
        if (row < params.rows) {
            let block = slab + row * params.row_bytes + (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
            stage_unit(block, u % UNITS_PER_BLOCK, r, part);
        } else {
            stage_zeros(r, part);
        }
    }
}
