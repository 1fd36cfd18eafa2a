// y = x·Wᵀ + b for x [m, k] and W [n, k] (PyTorch's layout), y [m, n], with k a multiple of 4
// (the caller zero-pads otherwise). Each invocation computes a 16×16 block of y in sixteen
// 4×4 register matrices: per 4 steps of k it loads 16 + 16 vec4 and does 1,024 multiply-adds.
// llvmpipe loads storage buffers lane by lane, so loads, not arithmetic, set the speed there:
// vec4 loads and a large register block keep that cost per multiply-add low. Rows and columns
// past the edge are clamped on load (their results are computed and not stored).
struct Params { m: u32, n: u32, k4: u32, tilesN: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Four rows (vec4 offsets in `rows`) of x at k-step `k`, one row per matrix column.
fn xBlock(rows: vec4u, k: u32) -> mat4x4f {
  return mat4x4f(x[rows.x + k], x[rows.y + k], x[rows.z + k], x[rows.w + k]);
}

fn wBlock(rows: vec4u, k: u32) -> mat4x4f {
  return mat4x4f(w[rows.x + k], w[rows.y + k], w[rows.z + k], w[rows.w + k]);
}

// vec4 offsets of rows r..r+3, clamped to the last row.
fn rowOffsets(r: u32, rows: u32) -> vec4u {
  return min(vec4u(r) + vec4u(0u, 1u, 2u, 3u), vec4u(rows - 1u)) * params.k4;
}

// Writes a 4×4 block (column j holds output column c + j) with the bias, inside the bounds.
fn store(block: mat4x4f, r: u32, c: u32) {
  for (var i = 0u; i < 4u; i++) {
    if (r + i >= params.m) { return; }
    for (var j = 0u; j < 4u; j++) {
      if (c + j < params.n) { y[(r + i) * params.n + c + j] = block[j][i] + b[c + j]; }
    }
  }
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let tile = (wid.x + wid.y * nwg.x) * 64u + lid;
  let r = (tile / params.tilesN) * 16u;
  let c = (tile % params.tilesN) * 16u;
  if (r >= params.m) { return; }
  let x0 = rowOffsets(r, params.m);
  let x1 = rowOffsets(r + 4u, params.m);
  let x2 = rowOffsets(r + 8u, params.m);
  let x3 = rowOffsets(r + 12u, params.m);
  let w0 = rowOffsets(c, params.n);
  let w1 = rowOffsets(c + 4u, params.n);
  let w2 = rowOffsets(c + 8u, params.n);
  let w3 = rowOffsets(c + 12u, params.n);
  // aIJ holds rows r+4I.. and columns c+4J.., column-major: aIJ[j][i].
  var a00 = mat4x4f(); var a01 = mat4x4f(); var a02 = mat4x4f(); var a03 = mat4x4f();
  var a10 = mat4x4f(); var a11 = mat4x4f(); var a12 = mat4x4f(); var a13 = mat4x4f();
  var a20 = mat4x4f(); var a21 = mat4x4f(); var a22 = mat4x4f(); var a23 = mat4x4f();
  var a30 = mat4x4f(); var a31 = mat4x4f(); var a32 = mat4x4f(); var a33 = mat4x4f();
  for (var k = 0u; k < params.k4; k++) {
    let b0 = wBlock(w0, k);
    let b1 = wBlock(w1, k);
    let b2 = wBlock(w2, k);
    let b3 = wBlock(w3, k);
    var t = transpose(xBlock(x0, k));
    a00 += t * b0; a01 += t * b1; a02 += t * b2; a03 += t * b3;
    t = transpose(xBlock(x1, k));
    a10 += t * b0; a11 += t * b1; a12 += t * b2; a13 += t * b3;
    t = transpose(xBlock(x2, k));
    a20 += t * b0; a21 += t * b1; a22 += t * b2; a23 += t * b3;
    t = transpose(xBlock(x3, k));
    a30 += t * b0; a31 += t * b1; a32 += t * b2; a33 += t * b3;
  }
  store(a00, r, c); store(a01, r, c + 4u); store(a02, r, c + 8u); store(a03, r, c + 12u);
  store(a10, r + 4u, c); store(a11, r + 4u, c + 4u); store(a12, r + 4u, c + 8u); store(a13, r + 4u, c + 12u);
  store(a20, r + 8u, c); store(a21, r + 8u, c + 4u); store(a22, r + 8u, c + 8u); store(a23, r + 8u, c + 12u);
  store(a30, r + 12u, c); store(a31, r + 12u, c + 4u); store(a32, r + 12u, c + 8u); store(a33, r + 12u, c + 12u);
}
