// Per row i of S [M, Mp] (rows padded to Mp entries): lse_i = log Σ_{j≠i} exp(S_ij), with the row maximum subtracted for
// stability, and the row's loss lse_i − S_i,pos(i), where pos(i) = i ± N. One workgroup per
// row: each invocation keeps a running (max, sum) over its strided share of the row, and the
// pairs are merged in a tree.
struct Params { rows: u32, stride: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> rowLoss: array<f32>;

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
  let m = params.rows;
  let base = row * params.stride;
  var runningMax = lowest;
  var runningSum = 0.0;
  for (var j = lid; j < m; j += 64u) {
    if (j == row) { continue; }
    let v = s[base + j];
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
  if (lid == 0u) {
    let value = partialMax[0] + log(partialSum[0]);
    lse[row] = value;
    let half = m / 2u;
    let positive = select(row + half, row - half, row >= half);
    rowLoss[row] = value - s[base + positive];
  }
}
