// The other half of a Sinkhorn–Knopp iteration of SwAV's codes: every sample's total weight
// made 1/B, Q[i,j] ← Q[i,j] / Σ_j Q[i,j] / B for the B = R − skip samples of Q [R, K] from row
// `skip` on. In the last iteration only the batch's own samples, the last `kept` rows, are
// normalised, times B (so that each row is an assignment summing to 1), into the codes
// [·, K] from row `codesRow` on. One workgroup per row.
struct Params { rows: u32, classes: u32, kept: u32, codesRow: u32, last: u32 }
struct Step { skip: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> codes: array<f32>;

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  let first = u32(step.skip);
  let keptFrom = params.rows - params.kept;
  // Uniform per workgroup, so the barriers below are reached by all or none.
  if (row >= params.rows || row < first || (params.last != 0u && row < keptFrom)) { return; }
  let k = params.classes;
  let base = row * k;
  var sum = 0.0;
  for (var j = lid; j < k; j += 64u) { sum += q[base + j]; }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  let total = partial[0];
  let samples = f32(params.rows - first);
  if (params.last == 0u) {
    for (var j = lid; j < k; j += 64u) { q[base + j] = q[base + j] / total / samples; }
    return;
  }
  let out = (params.codesRow + row - keptFrom) * k;
  for (var j = lid; j < k; j += 64u) { codes[out + j] = q[base + j] / total / samples * samples; }
}
