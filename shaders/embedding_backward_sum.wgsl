// gtable[v, e] += Σ_{p : ids[p] = v} gy[p, e]: the scatter-add of an embedding lookup's
// gradient into its table [V, D] (parameter gradients accumulate), for the rows v the batch
// uses, as embedding_backward_rows.wgsl listed them (rows; their count is flags[V]). Each
// invocation owns the chunk of 8 columns c of one listed row and scans every id, adding the
// rows that look it up in order of position — no two invocations write one element, so the
// sum needs no atomics and comes out the same every time. One invocation per (list entry, c),
// 64 a group, entry-major, for as many entries as the list can hold: those past its count
// exit at once.
struct Params { vocab: u32, d: u32, positions: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> flags: array<u32>;
@group(0) @binding(4) var<storage, read> rows: array<u32>;
@group(0) @binding(5) var<storage, read_write> gtable: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let task = gid.x + gid.y * nwg.x * 64u;
  let entry = task / params.chunks;
  if (entry >= flags[params.vocab]) { return; }
  let v = rows[entry];
  let first = (task % params.chunks) * 8u;
  let width = min(8u, params.d - first);
  var sum = array<f32, 8>();
  for (var p = 0u; p < params.positions; p++) {
    if (ids[p] != v) { continue; }
    let row = p * params.d + first;
    for (var k = 0u; k < width; k++) { sum[k] += gy[row + k]; }
  }
  let out = v * params.d + first;
  for (var k = 0u; k < width; k++) { gtable[out + k] += sum[k]; }
}
