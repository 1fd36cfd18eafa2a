// The position-embedding gradient of pos_embed_forward.wgsl, summed over the batch:
// gpos[first + t] += Σ_n gy[n, t] (parameter gradients accumulate; the input gradient is gy
// itself). One invocation per element of [T, D], 256 a group, each summing over the batch in
// order. In either precision (see inPrecision): gy is an activation gradient, summed in f32
// into the f32 parameter gradient.
alias act = f32;
struct Params { td: u32, batch: u32, firstOffset: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<act>;
@group(0) @binding(2) var<storage, read_write> gpos: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.td) { return; }
  var sum = 0.0;
  for (var n = 0u; n < params.batch; n++) { sum += f32(gy[n * params.td + i]); }
  gpos[params.firstOffset + i] += sum;
}
