// y[n, j] = x[n, index[n, j]] for tokens x [N, T, D] and u32 indices [N, K]: the tokens a
// mask keeps, or a permutation that restores their order. Its gradient is
// token_scatter.wgsl. One invocation per element of y [N, K, D], 256 a group. In
// either precision (see inPrecision): a copy.
alias act = f32;
struct Params { size: u32, k: u32, t: u32, d: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size) { return; }
  let e = i % params.d;
  let row = i / params.d;
  let n = row / params.k;
  y[i] = x[(n * params.t + index[row]) * params.d + e];
}
