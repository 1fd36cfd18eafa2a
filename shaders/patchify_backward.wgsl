// The image gradient of patchify_forward.wgsl: puts each patch value back at its pixel
// (the patches do not overlap, so this is a permutation). One invocation per pixel of
// gx [N, C, H, W], 256 a group.
struct Params { size: u32, c: u32, h: u32, w: u32, p: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> gx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size) { return; }
  let p = params.p;
  let x = i % params.w;
  let y = (i / params.w) % params.h;
  let ch = (i / (params.w * params.h)) % params.c;
  let n = i / (params.w * params.h * params.c);
  let gridW = params.w / p;
  let index = n * (params.h / p) * gridW + (y / p) * gridW + x / p;
  gx[i] = gy[(index * params.c + ch) * p * p + (y % p) * p + x % p];
}
