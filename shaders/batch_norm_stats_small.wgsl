// Batch norm's training statistics in one pass when a channel has few values (a small map, a
// small batch, or a group of split batch norm): one invocation per channel reads its N·HW
// values twice — the mean, then the squared deviations from it — and does what
// batch_norm_stats_combine.wgsl does after the chunked reduction: saves the mean and
// 1/sqrt(biased variance + eps), and updates the running statistics with momentum and the
// unbiased variance. A workgroup per (channel, chunk), as the chunked kernels use, would
// leave most of its 64 invocations idle here. The sums are compensated (Neumaier), so their
// rounding stays that of a pairwise sum, as the chunked kernels' is. x is an activation in
// either precision (see inPrecision); the statistics are f32.
alias act = f32;
struct Params { hw: u32, channels: u32, batch: u32, momentum: f32, eps: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> saved: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(4) var<storage, read_write> runningVar: array<f32>;

// Adds v to the compensated sum (sum, lost low-order bits).
fn add(acc: vec2f, v: f32) -> vec2f {
  let t = acc.x + v;
  let lost = select((v - t) + acc.x, (acc.x - t) + v, abs(acc.x) >= abs(v));
  return vec2f(t, acc.y + lost);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * 64u;
  if (c >= params.channels) { return; }
  let hw = params.hw;
  let planeStride = params.channels * hw;
  var sum = vec2f();
  for (var n = 0u; n < params.batch; n++) {
    let base = n * planeStride + c * hw;
    for (var s = 0u; s < hw; s++) { sum = add(sum, f32(x[base + s])); }
  }
  let m = f32(params.batch * hw);
  let mean = (sum.x + sum.y) / m;
  var total = vec2f();
  for (var n = 0u; n < params.batch; n++) {
    let base = n * planeStride + c * hw;
    for (var s = 0u; s < hw; s++) {
      let d = f32(x[base + s]) - mean;
      total = add(total, d * d);
    }
  }
  let squares = total.x + total.y;
  saved[c] = vec2f(mean, 1.0 / sqrt(squares / m + params.eps));
  let k = params.momentum;
  runningMean[c] = (1.0 - k) * runningMean[c] + k * mean;
  runningVar[c] = (1.0 - k) * runningVar[c] + k * squares / (m - 1.0);
}
