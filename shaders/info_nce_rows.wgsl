// MoCo's InfoNCE loss of one query per workgroup, forward and backward together. Row i's
// logits are (q̂ᵢ·k̂ᵢ, q̂ᵢ·queueᵀ)/τ with the positive key first, and its loss is the
// cross-entropy with label 0: lse − q̂ᵢ·k̂ᵢ/τ. `negatives` holds q̂·queueᵀ [N, K] from a GEMM;
// this kernel adds the positive, takes the logsumexp with a running (max, sum) merged in a
// tree, and writes the gradient of scale·loss with respect to the negative logits'
// inputs, gneg = scale·softmax/τ [N, K], and the positive's share of the query's gradient,
// (softmax₀ − 1)·scale/τ · k̂ᵢ [N, D]. The keys get no gradient (MoCo detaches them).
struct Params { rows: u32, dim: u32, negatives: u32, invTemperature: f32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> query: array<f32>;
@group(0) @binding(2) var<storage, read> key: array<f32>;
@group(0) @binding(3) var<storage, read> negatives: array<f32>;
@group(0) @binding(4) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(5) var<storage, read_write> gradNegatives: array<f32>;
@group(0) @binding(6) var<storage, read_write> gradQueryPositive: array<f32>;

var<workgroup> partialDot: array<f32, 64>;
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
  let d = params.dim;
  let k = params.negatives;
  let invT = params.invTemperature;

  var dot = 0.0;
  for (var c = lid; c < d; c += 64u) { dot += query[row * d + c] * key[row * d + c]; }
  partialDot[lid] = dot;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partialDot[lid] += partialDot[lid + stride]; }
    workgroupBarrier();
  }
  let positive = partialDot[0] * invT;

  var runningMax = lowest;
  var runningSum = 0.0;
  if (lid == 0u) {
    runningMax = positive;
    runningSum = 1.0;
  }
  let base = row * k;
  for (var j = lid; j < k; j += 64u) {
    let v = negatives[base + j] * invT;
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
  let factor = params.scale * invT;
  for (var j = lid; j < k; j += 64u) {
    gradNegatives[base + j] = exp(negatives[base + j] * invT - lse) * factor;
  }
  let gradPositive = (exp(positive - lse) - 1.0) * factor;
  for (var c = lid; c < d; c += 64u) {
    gradQueryPositive[row * d + c] = gradPositive * key[row * d + c];
  }
  if (lid == 0u) { rowLoss[row] = lse - positive; }
}
