// Adds up the splits of a tiled convolution's sum over k (conv2d_forward_tiled with several
// workgroups along z, each storing its partial outputs densely, [batch, out_channels, out_h,
// out_w] at split · count) and stores the sums in the output's placement (plane, step and
// offset as conv2d_forward's: a stride phase of an input gradient lands on every step-th row
// and column). Summed in split order, so the result does not depend on scheduling.
// One invocation per output value; grid ceil(count / 256), folded into 2-D when large.
// In either precision (see inPrecision): the partial sums are f32 in both, y is `act`.
alias act = f32;
struct Params {
  count: u32,
  out_channels: u32,
  out_h: u32,
  out_w: u32,
  plane_h: u32,
  plane_w: u32,
  step_y: u32,
  offset_y: u32,
  step_x: u32,
  offset_x: u32,
  splits: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.count) { return; }
  var sum = 0.0;
  for (var s = 0u; s < params.splits; s++) { sum += parts[s * params.count + i]; }
  let pixels = params.out_h * params.out_w;
  let plane = i / pixels; // n · out_channels + co
  let oy = i % pixels / params.out_w;
  let ox = i % params.out_w;
  let row = oy * params.step_y + params.offset_y;
  let column = ox * params.step_x + params.offset_x;
  y[plane * params.plane_h * params.plane_w + row * params.plane_w + column] = act(sum);
}
