// Prepends the class token with its position to a batch of tokens: y [N, 1 + P, D] with
// y[n, 0] = cls + pos[0] and y[n, 1 + p] = x[n, p] (as MAE's encoder, and equal to timm's
// concatenate-then-add when x already holds positions 1…P). One invocation per element of y,
// 256 a group. In either precision (see inPrecision): x and y are activations, cls and pos
// f32 parameters (their sum is rounded once).
alias act = f32;
struct Params { n: u32, tokens: u32, d: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> cls: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let e = i % params.d;
  let t = (i / params.d) % params.tokens;
  if (t == 0u) {
    y[i] = act(cls[e] + pos[e]);
  } else {
    y[i] = x[i - (i / (params.tokens * params.d) + 1u) * params.d];
  }
}
