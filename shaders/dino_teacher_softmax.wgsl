// DINO's teacher targets, one row of teacher outputs t [R, K] per workgroup: centring and
// sharpening, softmax((t − c) / τ_t) with the centre c [K]. The temperature follows a
// schedule (DINO's warm-up), so 1/τ_t is a step value. The row's maximum is taken out for
// stability by a running (max, sum) per invocation, merged in a tree.
struct Params { rows: u32, classes: u32 }
struct Step { invTemperature: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> teacher: array<f32>;
@group(0) @binding(3) var<storage, read> center: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> partialMax: array<f32, 64>;
var<workgroup> partialSum: array<f32, 64>;

// Stands for −∞ (WGSL has no infinity): exp(lowest − x) is 0 for any finite x.
const lowest = -3.0e38;

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
  var runningMax = lowest;
  var runningSum = 0.0;
  for (var j = lid; j < k; j += 64u) {
    let x = (teacher[base + j] - center[j]) * invT;
    if (x > runningMax) {
      runningSum = runningSum * exp(runningMax - x) + 1.0;
      runningMax = x;
    } else {
      runningSum += exp(x - runningMax);
    }
  }
  partialMax[lid] = runningMax;
  partialSum[lid] = runningSum;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let m1 = partialMax[lid];
      let m2 = partialMax[lid + stride];
      let top = max(m1, m2);
      partialSum[lid] = partialSum[lid] * exp(m1 - top) + partialSum[lid + stride] * exp(m2 - top);
      partialMax[lid] = top;
    }
    workgroupBarrier();
  }
  let top = partialMax[0];
  let sum = partialSum[0];
  for (var j = lid; j < k; j += 64u) {
    out[base + j] = exp((teacher[base + j] - center[j]) * invT - top) / sum;
  }
}
