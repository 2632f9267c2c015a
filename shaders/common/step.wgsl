// Where a step stands, written once per step by the host (runtime::graph::Graph::
// set_position) and read by every kernel whose work follows the position (the attention
// kernels, the Gated DeltaNet conv's ring of past inputs), so moving a plan to the next
// position is one 8-byte write rather than one params write per dispatch.

struct Step {
    // Position of the step's first token.
    pos0: u32,
    // Split-KV chunks the decode attention covers: ceil((pos0 + n_tokens) / CHUNK).
    n_chunks: u32,
}
