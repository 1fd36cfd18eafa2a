// Softmax cross-entropy of the rows of logits [R, K] whose target is not −1, averaged over
// those rows (masked language modelling's loss on the chosen tokens): one row per workgroup
// writes its loss (lse − x_target)/count and gradient (softmax − onehot)/count, or zeros when
// its target is −1. Each workgroup counts the valid targets of all rows itself (R is a few
// thousand at most), so the mean needs no second pass. A target ≥ K gives a NaN loss.
struct Params { rows: u32, classes: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

var<workgroup> partialCount: array<u32, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  // The whole workgroup leaves together, so the barriers below stay uniform.
  if (row >= params.rows) { return; }
  var counted = 0u;
  for (var r = lid; r < params.rows; r += 64u) { counted += select(0u, 1u, targets[r] >= 0); }
  partialCount[lid] = counted;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partialCount[lid] += partialCount[lid + stride]; }
    workgroupBarrier();
  }
  let scale = 1.0 / f32(max(partialCount[0], 1u));
  let k = params.classes;
  let base = row * k;
  var running = emptyRow;
  for (var j = lid; j < k; j += 64u) { running = addToRow(running, logits[base + j]); }
  let stats = rowMaxSum(lid, running);
  let lse = stats.x + log(stats.y);
  // Past the barriers: the branches below may depend on the row's target.
  let wanted = targets[row];
  let chosen = wanted >= 0;
  let valid = chosen && u32(wanted) < k;
  let index = select(k, u32(wanted), valid);
  for (var j = lid; j < k; j += 64u) {
    let onehot = select(0.0, 1.0, j == index);
    grad[base + j] = select(0.0, (exp(logits[base + j] - lse) - onehot) * scale, chosen);
  }
  if (lid == 0u) {
    // A NaN made at run time: a constant NaN is a shader-creation error in WGSL.
    let nanBits = 0x7fc00000u | u32(valid);
    let loss = select(bitcast<f32>(nanBits), (lse - logits[base + min(index, k - 1u)]) * scale, valid);
    rowLoss[row] = select(0.0, loss, chosen);
  }
}
