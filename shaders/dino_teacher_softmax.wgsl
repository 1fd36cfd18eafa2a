// DINO's teacher targets, one row of teacher outputs t [R, K] per workgroup: centring and
// sharpening, softmax((t − c) / τ_t) with the centre c [K]. The temperature follows a
// schedule (DINO's warm-up), so 1/τ_t is a step value. The row's softmax statistics come
// from row_softmax.wgsl, prepended.
struct Params { rows: u32, classes: u32 }
struct Step { invTemperature: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> teacher: array<f32>;
@group(0) @binding(3) var<storage, read> center: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform per workgroup, so the barriers below are reached by all or none.
  if (row >= params.rows) { return; }
  let k = params.classes;
  let base = row * k;
  let invT = step.invTemperature;
  var running = emptyRow;
  for (var j = lid; j < k; j += 64u) {
    running = addToRow(running, (teacher[base + j] - center[j]) * invT);
  }
  let statistics = rowMaxSum(lid, running);
  let top = statistics.x;
  let sum = statistics.y;
  for (var j = lid; j < k; j += 64u) {
    out[base + j] = exp((teacher[base + j] - center[j]) * invT - top) / sum;
  }
}
