// The cross-entropy of multi-crop methods, forward and backward together, one student row per
// workgroup: the targets q (soft, one row per image of each of the first G crops: DINO's
// centred and sharpened teacher outputs, SwAV's Sinkhorn codes) against the softmax of the
// logits s / τ of every crop, pairs of a crop with itself skipped. Crop v's row of image r
// has the loss Σ_{g<G, g≠v} −Σ_k q_g[r,k]·log_softmax(s/τ)_k, and the gradient of `scale`
// times it with respect to s is (Σ_{g≠v} Σ_k q_g[r,k] · softmax_k − Σ_{g≠v} q_g[r,k]) · scale/τ
// (the targets' mass is summed, not assumed 1). The row's softmax statistics come from
// row_softmax.wgsl, prepended.
struct Params {
  rowsPerCrop: u32,
  crops: u32,
  targetCrops: u32,
  classes: u32,
  invTemperature: f32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
// [crops·N, K]: crop v's row of image r at v·N + r.
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [targetCrops·N, K], laid out as the logits of the first targetCrops crops.
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

// (loss, target mass) per invocation.
var<workgroup> partialLoss: array<vec2f, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  let n = params.rowsPerCrop;
  // Uniform per workgroup, so the barriers below are reached by all or none.
  if (row >= params.crops * n) { return; }
  let k = params.classes;
  let invT = params.invTemperature;
  let crop = row / n;
  let image = row - crop * n;
  let base = row * k;

  var running = emptyRow;
  for (var j = lid; j < k; j += 64u) { running = addToRow(running, logits[base + j] * invT); }
  let statistics = rowMaxSum(lid, running);
  let lse = statistics.x + log(statistics.y);

  var sums = vec2f(0.0);
  for (var j = lid; j < k; j += 64u) {
    let logProbability = logits[base + j] * invT - lse;
    for (var g = 0u; g < params.targetCrops; g++) {
      if (g == crop) { continue; }
      let q = targets[(g * n + image) * k + j];
      sums += vec2f(-q * logProbability, q);
    }
  }
  partialLoss[lid] = sums;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partialLoss[lid] += partialLoss[lid + stride]; }
    workgroupBarrier();
  }
  let mass = partialLoss[0].y;
  let factor = params.scale * invT;
  for (var j = lid; j < k; j += 64u) {
    var wanted = 0.0;
    for (var g = 0u; g < params.targetCrops; g++) {
      if (g == crop) { continue; }
      wanted += targets[(g * n + image) * k + j];
    }
    grad[base + j] = (mass * exp(logits[base + j] * invT - lse) - wanted) * factor;
  }
  if (lid == 0u) { rowLoss[row] = partialLoss[0].x; }
}
