// Backward of class_token_forward.wgsl from gy [N, 1 + P, D]: gx[n, p] = gy[n, 1 + p]
// (overwritten) and, summed over the batch in order, gcls += Σ_n gy[n, 0] and, for learned
// positions, gpos[0] += the same sum (entry point `fixed_positions` leaves pos alone).
// One invocation per element of [1 + P, D], 256 a group, looping over the batch. In either
// precision (see inPrecision): gy and gx are activation gradients, gcls and gpos f32
// parameter gradients, the sums f32.
alias act = f32;
struct Params { td: u32, batch: u32, d: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<act>;
@group(0) @binding(2) var<storage, read_write> gx: array<act>;
@group(0) @binding(3) var<storage, read_write> gcls: array<f32>;
@group(0) @binding(4) var<storage, read_write> gpos: array<f32>;

// The batch sum of the class token's gradient at element i < d, or the copy of column i.
fn copyOrSum(i: u32) -> f32 {
  var sum = 0.0;
  if (i < params.d) {
    for (var n = 0u; n < params.batch; n++) { sum += f32(gy[n * params.td + i]); }
    gcls[i] += sum;
  } else {
    let patches = params.td - params.d;
    for (var n = 0u; n < params.batch; n++) { gx[n * patches + i - params.d] = gy[n * params.td + i]; }
  }
  return sum;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.td) { return; }
  let sum = copyOrSum(i);
  if (i < params.d) { gpos[i] += sum; }
}

@compute @workgroup_size(256)
fn fixed_positions(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.td) { return; }
  copyOrSum(i);
}
