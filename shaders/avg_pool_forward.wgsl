// Global average pooling: y[n, c] = mean of plane (n, c) of NCHW x. One invocation per plane.
// x and y in either precision (see inPrecision); the sum is f32.
alias act = f32;
struct Params { planes: u32, hw: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * 64u;
  if (p >= params.planes) { return; }
  let base = p * params.hw;
  var sum = 0.0;
  for (var s = 0u; s < params.hw; s++) { sum += f32(x[base + s]); }
  y[p] = act(sum / f32(params.hw));
}
