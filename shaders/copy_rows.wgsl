// dst[dstOffset + i] = src[srcOffset + i] for i < n: rows put side by side in one tensor (the
// global crops of a multi-crop batch, which go through the backbone together) or taken back
// out of it (each crop size's share of the features' gradient). The offsets are parameters,
// not binding offsets, so rows of any width can start anywhere.
struct Params { n: u32, srcOffset: u32, dstOffset: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  dst[params.dstOffset + i] = src[params.srcOffset + i];
}
