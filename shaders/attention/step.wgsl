// Where a step stands, written once per step by the host (runtime::graph::Graph::
// set_position) and read by every attention kernel, so moving a plan to the next position
// is one 8-byte write rather than one params write per attention dispatch.

struct Step {
    // Position of the step's first token.
    pos0: u32,
    // Split-KV chunks the decode attention covers: ceil((pos0 + n_tokens) / CHUNK).
    n_chunks: u32,
}
