// Second stage of batch norm's training statistics: workgroup c merges the chunk results of
// channel c from batch_norm_stats.wgsl (Chan et al.'s pairwise update, in a fixed order),
// saves the batch mean and 1/sqrt(biased variance + eps) for normalising and for backward,
// and updates the running statistics as PyTorch does: with momentum, and the unbiased
// variance (· M / (M − 1)).
struct Params {
  channels: u32,
  count: u32,
  chunk: u32,
  chunks: u32,
  momentum: f32,
  eps: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> saved: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(4) var<storage, read_write> runningVar: array<f32>;

var<workgroup> counts: array<f32, 64>;
var<workgroup> means: array<f32, 64>;
var<workgroup> squares: array<f32, 64>;

// Merges (nb, mb, m2b) into the running (n, mean, m2).
fn merge(a: vec3f, nb: f32, mb: f32, m2b: f32) -> vec3f {
  let total = a.x + nb;
  let d = mb - a.y;
  return vec3f(total, a.y + d * (nb / total), a.z + m2b + d * d * (a.x * nb / total));
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= params.channels) { return; }
  var acc = vec3f();
  for (var j = lid; j < params.chunks; j += 64u) {
    let nb = f32(min(params.chunk, params.count - j * params.chunk));
    let p = partial[c * params.chunks + j];
    acc = merge(acc, nb, p.x, p.y);
  }
  counts[lid] = acc.x;
  means[lid] = acc.y;
  squares[lid] = acc.z;
  for (var half = 32u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid < half && counts[lid + half] > 0.0) {
      let merged = merge(
        vec3f(counts[lid], means[lid], squares[lid]),
        counts[lid + half],
        means[lid + half],
        squares[lid + half],
      );
      counts[lid] = merged.x;
      means[lid] = merged.y;
      squares[lid] = merged.z;
    }
  }
  if (lid == 0u) {
    let m = f32(params.count);
    let mean = means[0];
    saved[c] = vec2f(mean, 1.0 / sqrt(squares[0] / m + params.eps));
    let k = params.momentum;
    runningMean[c] = (1.0 - k) * runningMean[c] + k * mean;
    runningVar[c] = (1.0 - k) * runningVar[c] + k * squares[0] / (m - 1.0);
  }
}
