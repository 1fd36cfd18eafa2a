// MAE's decoder input: the encoder's tokens put back at their places among mask tokens.
// y[n, t] = x[n, source[n, t]] for x [N, K, D] (the class token and the visible patches), or
// the mask token m [D] where source[n, t] is 0xffffffff (a masked patch): MAE's
// cat(x[:, 1:], mask_tokens) gathered by ids_restore, behind the class token, in one pass.
// One invocation per element of y [N, T, D], 256 a group.
struct Params { size: u32, t: u32, k: u32, d: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> source: array<u32>;
@group(0) @binding(3) var<storage, read> maskToken: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size) { return; }
  let e = i % params.d;
  let row = i / params.d;
  let origin = source[row];
  if (origin == 0xffffffffu) {
    y[i] = maskToken[e];
  } else {
    let n = row / params.t;
    y[i] = x[(n * params.k + origin) * params.d + e];
  }
}
