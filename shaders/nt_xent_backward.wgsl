// gẑ = H ẑ: H [M, Mp] (symmetric in its first M columns, zero after) times ẑ [Mp, Dp] into
// gẑ [Mp, Dp]. Each invocation keeps an 8×8 block of gẑ in registers, with no workgroup
// memory (as nt_xent_similarity). Row r of the block needs column r of H, which by symmetry
// is row r of H: every load is a contiguous vec4. Blocks are numbered along rows, so the
// invocations of a workgroup share their H loads and read consecutive vec4s of ẑ.
struct Params { rows: u32, paddedRows: u32, paddedCols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> h: array<vec4f>;
@group(0) @binding(2) var<storage, read> zhat: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> gzhat: array<vec4f>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let colBlocks = params.paddedCols / 8u;
  let block = gid.x + gid.y * nwg.x * 64u;
  if (block >= (params.paddedRows / 8u) * colBlocks) { return; }
  let hStride = params.paddedRows / 4u;
  let zStride = params.paddedCols / 4u;
  let r = (block / colBlocks) * 2u;
  let c = (block % colBlocks) * 2u;
  var acc0: vec4f; var acc1: vec4f; var acc2: vec4f; var acc3: vec4f;
  var acc4: vec4f; var acc5: vec4f; var acc6: vec4f; var acc7: vec4f;
  var acc8: vec4f; var acc9: vec4f; var acc10: vec4f; var acc11: vec4f;
  var acc12: vec4f; var acc13: vec4f; var acc14: vec4f; var acc15: vec4f;
  for (var j = 0u; j < params.rows; j++) {
    let h0 = h[j * hStride + r];
    let h1 = h[j * hStride + r + 1u];
    let z0 = zhat[j * zStride + c];
    let z1 = zhat[j * zStride + c + 1u];
    acc0 += h0.x * z0;
    acc1 += h0.x * z1;
    acc2 += h0.y * z0;
    acc3 += h0.y * z1;
    acc4 += h0.z * z0;
    acc5 += h0.z * z1;
    acc6 += h0.w * z0;
    acc7 += h0.w * z1;
    acc8 += h1.x * z0;
    acc9 += h1.x * z1;
    acc10 += h1.y * z0;
    acc11 += h1.y * z1;
    acc12 += h1.z * z0;
    acc13 += h1.z * z1;
    acc14 += h1.w * z0;
    acc15 += h1.w * z1;
  }
  let out = r * 4u * zStride + c;
  gzhat[out] = acc0;
  gzhat[out + 1u] = acc1;
  gzhat[out + zStride] = acc2;
  gzhat[out + zStride + 1u] = acc3;
  gzhat[out + 2u * zStride] = acc4;
  gzhat[out + 2u * zStride + 1u] = acc5;
  gzhat[out + 3u * zStride] = acc6;
  gzhat[out + 3u * zStride + 1u] = acc7;
  gzhat[out + 4u * zStride] = acc8;
  gzhat[out + 4u * zStride + 1u] = acc9;
  gzhat[out + 5u * zStride] = acc10;
  gzhat[out + 5u * zStride + 1u] = acc11;
  gzhat[out + 6u * zStride] = acc12;
  gzhat[out + 6u * zStride + 1u] = acc13;
  gzhat[out + 7u * zStride] = acc14;
  gzhat[out + 7u * zStride + 1u] = acc15;
}
