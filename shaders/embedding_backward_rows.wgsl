// The rows of an embedding table that a batch's ids use, for its backward pass
// (embedding_backward_sum.wgsl): the first position to claim a row's flag appends the row to
// the list. The list's order varies from run to run; the sums do not, as each row's is made
// by one invocation in order of position. flags [V + 1]: a flag per row, then the length of
// the list; zero before the pass. One invocation per position, 64 a group.
struct Params { vocab: u32, positions: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> rows: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * 64u;
  if (p >= params.positions) { return; }
  let v = ids[p];
  // An id past the table has no row (its lookup gave NaN rows) and no gradient.
  if (v >= params.vocab || atomicExchange(&flags[v], 1u) != 0u) { return; }
  rows[atomicAdd(&flags[params.vocab], 1u)] = v;
}
