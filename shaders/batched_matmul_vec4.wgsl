// C[b] = A[b]·B[b] as batched_matmul.wgsl, for operands whose contiguous dimension holds
// whole vec4s: offsets and strides of A and B are multiples of 4 and given here in vec4s.
// On llvmpipe loads, not multiply-adds, set the speed, and a vec4 load costs about what a
// scalar one does, so these kernels do four times the work per load of the strided one.
// Each invocation computes an 8×8 block of C[b]: 16 vec4 loads per 256 multiply-adds.
// One entry point per operand layout:
//   nt: A and B run along k (A·Bᵀ of row-major matrices: scores q·kᵀ, gP = gO·vᵀ); k is a
//       multiple of 4 and `steps` = k / 4;
//   nn: A runs along k, B along j (P·v, gq = gS·k); `steps` = ceil(k / 4) and A's rows must
//       be zero from k up to that multiple of 4 (the padded columns of P and gS);
//   tn: A runs along i, B along j (Aᵀ·B: gv = Pᵀ·gO, gk = gSᵀ·q); `steps` = k.
// `aStride` and `bStride` step between lines (rows, or columns for tn's A) in vec4s. Lines
// past the edge are clamped on load and not stored: `mLast` and `nLast` are the last line of
// A and of B, or the last vec4 along a contiguous i or j; `kLast` is B's last row for nn.
// C is the sums times `scale`, as in batched_matmul.wgsl. In either precision (see
// inPrecision): operands loaded as vec4f, products and sums in f32, C rounded once.
alias act = f32;
struct Params {
  m: u32, n: u32, steps: u32, kLast: u32, mLast: u32, nLast: u32,
  heads: u32, batches: u32, tilesN: u32, tiles: u32,
  aOffset: u32, aOuter: u32, aHead: u32, aStride: u32,
  bOffset: u32, bOuter: u32, bHead: u32, bStride: u32,
  cOffset: u32, cOuter: u32, cHead: u32, cRow: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<act>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<act>>;
@group(0) @binding(3) var<storage, read_write> c: array<act>;

// The invocation's matrix, the first row and column of its block, and the matrix's bases.
struct Block { batch: u32, row: u32, col: u32, a: u32, b: u32, c: u32 }

fn locate(wid: vec3u, nwg: vec3u, lid: u32) -> Block {
  let index = (wid.x + wid.y * nwg.x) * 64u + lid;
  let batch = index / params.tiles;
  let tile = index % params.tiles;
  let outer = batch / params.heads;
  let head = batch % params.heads;
  return Block(
    batch,
    (tile / params.tilesN) * 8u,
    (tile % params.tilesN) * 8u,
    params.aOffset + outer * params.aOuter + head * params.aHead,
    params.bOffset + outer * params.bOuter + head * params.bHead,
    params.cOffset + outer * params.cOuter + head * params.cHead,
  );
}

// Offsets of lines first..first+3, clamped to `last`, `stride` apart from `base`.
fn lines(base: u32, first: u32, last: u32, stride: u32) -> vec4u {
  return base + min(vec4u(first) + vec4u(0u, 1u, 2u, 3u), vec4u(last)) * stride;
}

fn loadA(o: vec4u, k: u32) -> mat4x4f {
  return mat4x4f(vec4f(a[o.x + k]), vec4f(a[o.y + k]), vec4f(a[o.z + k]), vec4f(a[o.w + k]));
}

fn loadB(o: vec4u, k: u32) -> mat4x4f {
  return mat4x4f(vec4f(b[o.x + k]), vec4f(b[o.y + k]), vec4f(b[o.z + k]), vec4f(b[o.w + k]));
}

fn outer4(u: vec4f, v: vec4f) -> mat4x4f {
  return mat4x4f(u * v.x, u * v.y, u * v.z, u * v.w);
}

// Writes a 4×4 block whose m[j][i] is C[row + i, col + j], inside the bounds.
fn store(m: mat4x4f, base: u32, row: u32, col: u32) {
  for (var i = 0u; i < 4u; i++) {
    if (row + i >= params.m) { return; }
    for (var j = 0u; j < 4u; j++) {
      if (col + j < params.n) { c[base + (row + i) * params.cRow + col + j] = act(m[j][i] * params.scale); }
    }
  }
}

fn storeAll(p: Block, c00: mat4x4f, c01: mat4x4f, c10: mat4x4f, c11: mat4x4f) {
  store(c00, p.c, p.row, p.col); store(c01, p.c, p.row, p.col + 4u);
  store(c10, p.c, p.row + 4u, p.col); store(c11, p.c, p.row + 4u, p.col + 4u);
}

@compute @workgroup_size(64)
fn nt(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = locate(wid, nwg, lid);
  if (p.batch >= params.batches) { return; }
  let a0 = lines(p.a, p.row, params.mLast, params.aStride);
  let a1 = lines(p.a, p.row + 4u, params.mLast, params.aStride);
  let b0 = lines(p.b, p.col, params.nLast, params.bStride);
  let b1 = lines(p.b, p.col + 4u, params.nLast, params.bStride);
  var c00 = mat4x4f(); var c01 = mat4x4f(); var c10 = mat4x4f(); var c11 = mat4x4f();
  for (var k = 0u; k < params.steps; k++) {
    // Columns of loadA/loadB are rows of A and B over 4 steps of k; transpose(A)·B sums them.
    let v0 = loadB(b0, k);
    let v1 = loadB(b1, k);
    var t = transpose(loadA(a0, k));
    c00 += t * v0; c01 += t * v1;
    t = transpose(loadA(a1, k));
    c10 += t * v0; c11 += t * v1;
  }
  storeAll(p, c00, c01, c10, c11);
}

@compute @workgroup_size(64)
fn nn(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = locate(wid, nwg, lid);
  if (p.batch >= params.batches) { return; }
  let a0 = lines(p.a, p.row, params.mLast, params.aStride);
  let a1 = lines(p.a, p.row + 4u, params.mLast, params.aStride);
  let j0 = p.b + min(p.col / 4u, params.nLast);
  let j1 = p.b + min(p.col / 4u + 1u, params.nLast);
  // cIJ[i][j] is C[row + 4I + i, col + 4J + j]: one output row per matrix column.
  var c00 = mat4x4f(); var c01 = mat4x4f(); var c10 = mat4x4f(); var c11 = mat4x4f();
  for (var k = 0u; k < params.steps; k++) {
    // Rows 4k..4k+3 of B (clamped: A is zero past its last column), one per matrix column;
    // B-block · A-row sums them weighted by the row's four values.
    let rows = lines(0u, 4u * k, params.kLast, params.bStride);
    let v0 = loadB(rows, j0);
    let v1 = loadB(rows, j1);
    let u0 = loadA(a0, k);
    let u1 = loadA(a1, k);
    c00 += v0 * u0; c01 += v1 * u0;
    c10 += v0 * u1; c11 += v1 * u1;
  }
  storeAll(p, transpose(c00), transpose(c01), transpose(c10), transpose(c11));
}

@compute @workgroup_size(64)
fn tn(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = locate(wid, nwg, lid);
  if (p.batch >= params.batches) { return; }
  let i0 = p.a + min(p.row / 4u, params.mLast);
  let i1 = p.a + min(p.row / 4u + 1u, params.mLast);
  let j0 = p.b + min(p.col / 4u, params.nLast);
  let j1 = p.b + min(p.col / 4u + 1u, params.nLast);
  var c00 = mat4x4f(); var c01 = mat4x4f(); var c10 = mat4x4f(); var c11 = mat4x4f();
  for (var k = 0u; k < params.steps; k++) {
    let u0 = vec4f(a[i0 + k * params.aStride]);
    let u1 = vec4f(a[i1 + k * params.aStride]);
    let v0 = vec4f(b[j0 + k * params.bStride]);
    let v1 = vec4f(b[j1 + k * params.bStride]);
    c00 += outer4(u0, v0); c01 += outer4(u0, v1);
    c10 += outer4(u1, v0); c11 += outer4(u1, v1);
  }
  storeAll(p, c00, c01, c10, c11);
}
