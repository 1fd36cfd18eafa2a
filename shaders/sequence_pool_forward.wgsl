// One feature vector per sequence from its tokens' features x [N, T, D]: the mean over the
// tokens that are not padding (tokens[n, t] ≠ pad) (mode 0), the first token's (mode 1), or
// the last non-padding token's (mode 2, CLIP's end of text). y [N, D]; one invocation per
// element of y, 256 a group.
struct Params { n: u32, t: u32, d: u32, pad: u32, mode: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n * params.d) { return; }
  let n = i / params.d;
  let e = i % params.d;
  let base = n * params.t;
  if (params.mode == 1u) {
    y[i] = x[base * params.d + e];
    return;
  }
  var sum = 0.0;
  var count = 0u;
  var last = 0u;
  for (var t = 0u; t < params.t; t++) {
    if (tokens[base + t] == params.pad) { continue; }
    sum += x[(base + t) * params.d + e];
    count++;
    last = t;
  }
  if (params.mode == 2u) {
    y[i] = x[(base + last) * params.d + e];
  } else {
    y[i] = sum / f32(max(count, 1u));
  }
}
