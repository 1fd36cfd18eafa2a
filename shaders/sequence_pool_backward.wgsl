// The gradient of sequence_pool_forward.wgsl: gx[n, t, e] = gy[n, e]·w(n, t) with w the
// pooling's weight of token t — 1/count for each non-padding token (mode 0), 1 for the first
// (mode 1) or the last non-padding token (mode 2), 0 elsewhere. gx is [N, T, D],
// overwritten; one invocation per row (n, t), 64 a group.
struct Params { n: u32, t: u32, d: u32, pad: u32, mode: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.n * params.t) { return; }
  let n = row / params.t;
  let t = row % params.t;
  let base = n * params.t;
  var count = 0u;
  var last = 0u;
  for (var k = 0u; k < params.t; k++) {
    if (tokens[base + k] != params.pad) {
      count++;
      last = k;
    }
  }
  var w = 0.0;
  if (params.mode == 0u && tokens[row] != params.pad) { w = 1.0 / f32(max(count, 1u)); }
  if (params.mode == 1u && t == 0u) { w = 1.0; }
  if (params.mode == 2u && t == last) { w = 1.0; }
  for (var e = 0u; e < params.d; e++) { gx[row * params.d + e] = gy[n * params.d + e] * w; }
}
