// y = (x − mean)·invstd·γ + β over NCHW x, with the per-channel (mean, invstd) in `saved`,
// passed through `epilogue` (batch_norm_epilogue.wgsl: as it is, or a ReLU;
// batch_norm_epilogue_residual.wgsl: a residual join and its ReLU), which saves the passes
// over the activations that separate layers would make.
// Invocation (p, g) handles value p of the C·HW values of images g, g + groups, …: its
// channel is fixed, so there is one division per invocation rather than one per element, and
// neighbouring invocations touch neighbouring values. x and y are activations in either
// precision (see inPrecision); the statistics and parameters are f32, as is the arithmetic.
alias act = f32;
struct Params { chw: u32, hw: u32, images: u32, groups: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> saved: array<vec2f>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<act>;
const residualBinding = 6u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let p = i % params.chw;
  let g = i / params.chw;
  if (g >= params.groups) { return; }
  let c = p / params.hw;
  let stats = saved[c];
  let scale = stats.y * weight[c];
  let shift = bias[c];
  for (var n = g; n < params.images; n += params.groups) {
    let o = n * params.chw + p;
    y[o] = act(epilogue((f32(x[o]) - stats.x) * scale + shift, o));
  }
}
