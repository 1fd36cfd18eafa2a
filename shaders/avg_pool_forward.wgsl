// Global average pooling: y[n, c] = mean of plane (n, c) of NCHW x. One invocation per plane.
struct Params { planes: u32, hw: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * 64u;
  if (p >= params.planes) { return; }
  let base = p * params.hw;
  var sum = 0.0;
  for (var s = 0u; s < params.hw; s++) { sum += x[base + s]; }
  y[p] = sum / f32(params.hw);
}
