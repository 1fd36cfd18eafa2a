// gx = a·gy + b·(x − mean) + d with the per-channel (a, b, d, mean) from
// batch_norm_backward_combine.wgsl; laid out over (position, image group) as
// batch_norm_forward.wgsl, with x, gy and gx in either precision as there.
alias act = f32;
struct Params { chw: u32, hw: u32, images: u32, groups: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> gy: array<act>;
@group(0) @binding(3) var<storage, read> coefficients: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> gx: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let p = i % params.chw;
  let g = i / params.chw;
  if (g >= params.groups) { return; }
  let k = coefficients[p / params.hw];
  for (var n = g; n < params.images; n += params.groups) {
    let o = n * params.chw + p;
    gx[o] = act(k.x * f32(gy[o]) + k.y * (f32(x[o]) - k.w) + k.z);
  }
}
