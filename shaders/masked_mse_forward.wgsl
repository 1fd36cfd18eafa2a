// MAE's loss per patch, its share of the mean (masked_mse_backward.wgsl is its gradient):
// for patch l of image n, scale · mask[n, l] · mean_i (pred[n, 1 + l, i] − target_i)², with
// the declarations and the target in patch_target.wgsl. loss_mean.wgsl then adds the rows in
// a fixed order. One invocation per patch, 64 a group.
@group(0) @binding(4) var<storage, read_write> rowLoss: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.patches) { return; }
  let n = row / params.perImage;
  let l = row % params.perImage;
  let size = 3u * params.patchSize * params.patchSize;
  let stats = patchStats(n, l);
  let base = (row + n + 1u) * size;
  var sum = 0.0;
  for (var i = 0u; i < size; i++) {
    let diff = pred[base + i] - (patchPixel(n, l, i) - stats.x) / stats.y;
    sum += diff * diff;
  }
  rowLoss[row] = params.scale * mask[row] * (sum / f32(size));
}
