// The gradient of masked_mse_forward.wgsl's loss with respect to the prediction
// [N, 1 + L, P] (declarations and target in patch_target.wgsl): for patch row 1 + l of
// image n, scale · mask[n, l] · 2 (pred_i − target_i) / P, and zero for the class token's
// row 0. Overwritten. One invocation per row of the prediction, 64 a group.
@group(0) @binding(4) var<storage, read_write> gradPred: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  let tokens = params.perImage + 1u;
  if (row >= (params.patches / params.perImage) * tokens) { return; }
  let n = row / tokens;
  let t = row % tokens;
  let size = 3u * params.patchSize * params.patchSize;
  let base = row * size;
  var weight = 0.0;
  if (t > 0u) { weight = mask[n * params.perImage + t - 1u]; }
  if (weight == 0.0) {
    for (var i = 0u; i < size; i++) { gradPred[base + i] = 0.0; }
    return;
  }
  let l = t - 1u;
  let stats = patchStats(n, l);
  let factor = params.scale * weight * 2.0 / f32(size);
  for (var i = 0u; i < size; i++) {
    gradPred[base + i] = factor * (pred[base + i] - (patchPixel(n, l, i) - stats.x) / stats.y);
  }
}
