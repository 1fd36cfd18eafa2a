// First stage of batch norm's training statistics over NCHW x: workgroup g reduces chunk
// g % chunks of channel g / chunks (elements m = n·HW + s in [chunk·j, chunk·(j+1))) to its
// mean and sum of squared deviations. Each invocation runs Welford's update over every 64th
// element of the chunk, then the workgroup merges the 64 results pairwise (Chan et al.):
// sound in f32 where E[x²] − E[x]² cancels. batch_norm_stats_combine.wgsl merges the chunks.
// x is an activation in either precision (see inPrecision); the statistics are f32.
alias act = f32;
struct Params {
  hw: u32,
  channels: u32,
  count: u32,
  chunk: u32,
  chunks: u32,
  // Advancing m by 64 moves (64 / HW) planes of C·HW values and (64 % HW) positions.
  stepAddress: u32,
  stepPosition: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec2f>;

var<workgroup> counts: array<f32, 64>;
var<workgroup> means: array<f32, 64>;
var<workgroup> squares: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let group = wid.x + wid.y * nwg.x;
  let c = group / params.chunks;
  if (c >= params.channels) { return; }
  let start = (group % params.chunks) * params.chunk;
  let end = min(start + params.chunk, params.count);
  let hw = params.hw;
  // Positions are tracked incrementally: a division per element would cost more than the load.
  var m = start + lid;
  var s = m % hw;
  var address = ((m / hw) * params.channels + c) * hw + s;
  let wrap = (params.channels - 1u) * hw;
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (; m < end; m += 64u) {
    let v = f32(x[address]);
    n += 1.0;
    let d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
    s += params.stepPosition;
    address += params.stepAddress;
    if (s >= hw) {
      s -= hw;
      address += wrap;
    }
  }
  counts[lid] = n;
  means[lid] = mean;
  squares[lid] = m2;
  for (var half = 32u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid < half) {
      let nb = counts[lid + half];
      if (nb > 0.0) {
        let na = counts[lid];
        let total = na + nb;
        let d = means[lid + half] - means[lid];
        means[lid] += d * (nb / total);
        squares[lid] += squares[lid + half] + d * d * (na * nb / total);
        counts[lid] = total;
      }
    }
  }
  if (lid == 0u) { partial[group] = vec2f(means[0], squares[0]); }
}
