// DINO's centre after the loss has used it: c ← c·m + mean_rows(t)·(1 − m) over the teacher's
// raw outputs t [R, K] (both global crops), as DINOLoss.update_center; 1 − m comes from the
// host in float64, as Python computes it. One invocation per class, summing down its column.
struct Params { rows: u32, classes: u32, momentum: f32, oneMinusMomentum: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> teacher: array<f32>;
@group(0) @binding(2) var<storage, read_write> center: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 256u;
  if (j >= params.classes) { return; }
  var sum = 0.0;
  for (var r = 0u; r < params.rows; r++) { sum += teacher[r * params.classes + j]; }
  let batchCenter = sum / f32(params.rows);
  center[j] = center[j] * params.momentum + batchCenter * params.oneMinusMomentum;
}
