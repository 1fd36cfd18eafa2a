// The mask token's gradient from mask_tokens_forward.wgsl: gm[e] += Σ gy[r, e] over the rows
// r of gy [N·T, D] that hold the mask token (source[r] = 0xffffffff); parameter gradients
// accumulate. (The gradient of x is a gather of gy's other rows: token_gather.wgsl.) One
// workgroup per element e: 256 invocations take every 256th row, then add their sums in a
// fixed tree, so the result does not depend on scheduling.
struct Params { rows: u32, d: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> source: array<u32>;
@group(0) @binding(3) var<storage, read_write> gm: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let e = wid.x + wid.y * nwg.x;
  var sum = 0.0;
  if (e < params.d) {
    for (var r = lid; r < params.rows; r += 256u) {
      if (source[r] == 0xffffffffu) { sum += gy[r * params.d + e]; }
    }
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u && e < params.d) { gm[e] += partial[0]; }
}
