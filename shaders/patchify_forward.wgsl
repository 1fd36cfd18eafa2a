// Cuts images [N, C, H, W] into non-overlapping p×p patches, row-major over the patch grid:
// y [N, (H/p)·(W/p), C·p·p], each patch flattened as (c, ky, kx) — the layout of a
// convolution weight [D, C, p, p], so a GEMM with that weight is the patch embedding
// (a convolution with kernel = stride = p). One invocation per element, 256 a group. In
// either precision (see inPrecision): a copy.
alias act = f32;
struct Params { size: u32, c: u32, h: u32, w: u32, p: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size) { return; }
  let p = params.p;
  let patchSize = params.c * p * p;
  let inPatch = i % patchSize;
  let index = i / patchSize;
  let gridW = params.w / p;
  let patches = (params.h / p) * gridW;
  let n = index / patches;
  let py = (index % patches) / gridW;
  let px = index % gridW;
  let ch = inPatch / (p * p);
  let ky = (inPatch / p) % p;
  let kx = inPatch % p;
  y[i] = x[((n * params.c + ch) * params.h + py * p + ky) * params.w + px * p + kx];
}
