// Softmax cross-entropy of one row of logits [N, K] per workgroup: the row's loss
// lse − x_label and its gradient (softmax − onehot) · scale, with scale = 1/N for the mean.
// The row maximum is subtracted for stability through a running (max, sum) per invocation,
// merged in a tree. A label outside [0, K) gives a NaN loss, so bad data cannot pass unseen.
struct Params { rows: u32, classes: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

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
  if (row >= params.rows) { return; }
  let k = params.classes;
  let base = row * k;
  var runningMax = lowest;
  var runningSum = 0.0;
  for (var j = lid; j < k; j += 64u) {
    let v = logits[base + j];
    if (v > runningMax) {
      runningSum = runningSum * exp(runningMax - v) + 1.0;
      runningMax = v;
    } else {
      runningSum += exp(v - runningMax);
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
  let lse = partialMax[0] + log(partialSum[0]);
  let label = labels[row];
  let valid = label >= 0 && u32(label) < k;
  let labelIndex = select(k, u32(label), valid);
  for (var j = lid; j < k; j += 64u) {
    let onehot = select(0.0, 1.0, j == labelIndex);
    grad[base + j] = (exp(logits[base + j] - lse) - onehot) * params.scale;
  }
  if (lid == 0u) {
    // A NaN made at run time: a constant NaN is a shader-creation error in WGSL.
    let nanBits = 0x7fc00000u | u32(valid);
    rowLoss[row] = select(bitcast<f32>(nanBits), lse - logits[base + min(labelIndex, k - 1u)], valid);
  }
}
