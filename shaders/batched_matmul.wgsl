// C[b] = A[b]·B[b] for a batch of matrices addressed by strides, so attention reads q, k and v
// straight out of the fused qkv projection [N, T, 3, H, dh] and writes its output as
// [N, T, H, dh] with no transposing copies; a transpose is a swap of two strides. Batch
// index b = outer·heads + head; element (i, j) of A[b] is
// a[aOffset + outer·aOuter + head·aHead + i·aRow + j·aCol], likewise for B, and C is
// row-major with row stride cRow. Each invocation computes an 8×8 block of C[b] in four 4×4
// register matrices: per step of the inner dimension it loads 8 + 8 values and does 64
// multiply-adds. Rows and columns past the edge are clamped on load and not stored. C is the
// sums times `scale` (1 but for attention's f16 scores, see attentionForward). In either
// precision (see inPrecision): the products and sums in f32, C rounded once.
alias act = f32;
struct Params {
  m: u32, n: u32, k: u32,
  heads: u32, batches: u32, tilesN: u32, tiles: u32,
  aOffset: u32, aOuter: u32, aHead: u32, aRow: u32, aCol: u32,
  bOffset: u32, bOuter: u32, bHead: u32, bRow: u32, bCol: u32,
  cOffset: u32, cOuter: u32, cHead: u32, cRow: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<act>;
@group(0) @binding(2) var<storage, read> b: array<act>;
@group(0) @binding(3) var<storage, read_write> c: array<act>;

fn outer(u: vec4f, v: vec4f) -> mat4x4f {
  return mat4x4f(u * v.x, u * v.y, u * v.z, u * v.w);
}

// Four elements of A (or B) at the offsets in `base` plus `step`.
fn loadA(base: vec4u, step: u32) -> vec4f {
  return vec4f(vec4<act>(a[base.x + step], a[base.y + step], a[base.z + step], a[base.w + step]));
}

fn loadB(base: vec4u, step: u32) -> vec4f {
  return vec4f(vec4<act>(b[base.x + step], b[base.y + step], b[base.z + step], b[base.w + step]));
}

// Writes a 4×4 block (column j holds output column col + j) inside the bounds.
fn store(block: mat4x4f, base: u32, row: u32, col: u32) {
  for (var i = 0u; i < 4u; i++) {
    if (row + i >= params.m) { return; }
    for (var j = 0u; j < 4u; j++) {
      if (col + j < params.n) { c[base + (row + i) * params.cRow + col + j] = act(block[j][i] * params.scale); }
    }
  }
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let index = (wid.x + wid.y * nwg.x) * 64u + lid;
  let batch = index / params.tiles;
  if (batch >= params.batches) { return; }
  let tile = index % params.tiles;
  let row = (tile / params.tilesN) * 8u;
  let col = (tile % params.tilesN) * 8u;
  let outerIndex = batch / params.heads;
  let head = batch % params.heads;
  let aBase = params.aOffset + outerIndex * params.aOuter + head * params.aHead;
  let bBase = params.bOffset + outerIndex * params.bOuter + head * params.bHead;
  let step = vec4u(0u, 1u, 2u, 3u);
  let lastRow = vec4u(params.m - 1u);
  let lastCol = vec4u(params.n - 1u);
  let a0 = aBase + min(vec4u(row) + step, lastRow) * params.aRow;
  let a1 = aBase + min(vec4u(row + 4u) + step, lastRow) * params.aRow;
  let b0 = bBase + min(vec4u(col) + step, lastCol) * params.bCol;
  let b1 = bBase + min(vec4u(col + 4u) + step, lastCol) * params.bCol;
  var c00 = mat4x4f(); var c01 = mat4x4f(); var c10 = mat4x4f(); var c11 = mat4x4f();
  for (var k = 0u; k < params.k; k++) {
    let u0 = loadA(a0, k * params.aCol);
    let u1 = loadA(a1, k * params.aCol);
    let v0 = loadB(b0, k * params.bRow);
    let v1 = loadB(b1, k * params.bRow);
    c00 += outer(u0, v0); c01 += outer(u0, v1);
    c10 += outer(u1, v0); c11 += outer(u1, v1);
  }
  let cBase = params.cOffset + outerIndex * params.cOuter + head * params.cHead;
  store(c00, cBase, row, col); store(c01, cBase, row, col + 4u);
  store(c10, cBase, row + 4u, col); store(c11, cBase, row + 4u, col + 4u);
}
