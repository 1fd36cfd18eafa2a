// CLIP's symmetric contrastive loss, last pass, in one workgroup: the loss
// Σ_i (lse_row i + lse_column i − 2·scale·S_ii) / 2N, and the gradient of the temperature's
// logarithm s, Σ P·S · scale (0 where the scale is clamped at 100), added to its gradient
// (parameter gradients accumulate).
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> similarity: array<f32>;
@group(0) @binding(2) var<storage, read> logitScale: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> scaleTerms: array<f32>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
@group(0) @binding(6) var<storage, read_write> gradLogitScale: array<f32>;

var<workgroup> partialLoss: array<f32, 256>;
var<workgroup> partialScale: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = params.n;
  let raw = exp(logitScale[0]);
  let scale = min(raw, 100.0);
  var lossSum = 0.0;
  for (var i = lid; i < n; i += 256u) {
    lossSum += lse[i] + lse[n + i] - 2.0 * scale * similarity[i * n + i];
  }
  var scaleSum = 0.0;
  for (var k = lid; k < n * n; k += 256u) { scaleSum += scaleTerms[k]; }
  partialLoss[lid] = lossSum;
  partialScale[lid] = scaleSum;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partialLoss[lid] += partialLoss[lid + stride];
      partialScale[lid] += partialScale[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    loss[0] = partialLoss[0] / f32(2u * n);
    gradLogitScale[0] += select(0.0, partialScale[0] * raw, raw < 100.0);
  }
}
