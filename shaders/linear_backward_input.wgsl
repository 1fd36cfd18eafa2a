// gx = gy·W for gy [m, k] and W [k, n] (PyTorch's weight layout [out, in]), gx [m, n], with k
// and n multiples of 4 (the caller zero-pads otherwise). Blocked as linear_forward.wgsl: each
// invocation computes a 16×16 block of gx from 16 + 16 vec4 loads per 4 steps of k. The
// 4×4 blocks are held transposed (aIJ[i][j] is row r+4I+i, column c+4J+j), which lets them
// accumulate W-block · gy-block with no transpose.
struct Params { m: u32, n: u32, k4: u32, n4: u32, tilesN: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<vec4f>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;

// Four rows of gy (vec4 offsets in `rows`) at k-step `k`, one row per matrix column.
fn gyBlock(rows: vec4u, k: u32) -> mat4x4f {
  return mat4x4f(gy[rows.x + k], gy[rows.y + k], gy[rows.z + k], gy[rows.w + k]);
}

// Rows 4k..4k+3 of W at vec4 column `col`, one row per matrix column.
fn wBlock(k: u32, col: u32) -> mat4x4f {
  let o = 4u * k * params.n4 + col;
  return mat4x4f(w[o], w[o + params.n4], w[o + 2u * params.n4], w[o + 3u * params.n4]);
}

fn store(block: mat4x4f, r: u32, c: u32) {
  for (var i = 0u; i < 4u; i++) {
    if (r + i >= params.m) { return; }
    for (var j = 0u; j < 4u; j++) {
      if (c + j < params.n) { gx[(r + i) * params.n + c + j] = block[i][j]; }
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
  let lastRow = vec4u(params.m - 1u);
  let step = vec4u(0u, 1u, 2u, 3u);
  let g0 = min(vec4u(r) + step, lastRow) * params.k4;
  let g1 = min(vec4u(r + 4u) + step, lastRow) * params.k4;
  let g2 = min(vec4u(r + 8u) + step, lastRow) * params.k4;
  let g3 = min(vec4u(r + 12u) + step, lastRow) * params.k4;
  // vec4 columns past the edge are clamped to the last one.
  let lastCol = params.n4 - 1u;
  let c0 = min(c / 4u, lastCol);
  let c1 = min(c / 4u + 1u, lastCol);
  let c2 = min(c / 4u + 2u, lastCol);
  let c3 = min(c / 4u + 3u, lastCol);
  var a00 = mat4x4f(); var a01 = mat4x4f(); var a02 = mat4x4f(); var a03 = mat4x4f();
  var a10 = mat4x4f(); var a11 = mat4x4f(); var a12 = mat4x4f(); var a13 = mat4x4f();
  var a20 = mat4x4f(); var a21 = mat4x4f(); var a22 = mat4x4f(); var a23 = mat4x4f();
  var a30 = mat4x4f(); var a31 = mat4x4f(); var a32 = mat4x4f(); var a33 = mat4x4f();
  for (var k = 0u; k < params.k4; k++) {
    let b0 = wBlock(k, c0);
    let b1 = wBlock(k, c1);
    let b2 = wBlock(k, c2);
    let b3 = wBlock(k, c3);
    var t = gyBlock(g0, k);
    a00 += b0 * t; a01 += b1 * t; a02 += b2 * t; a03 += b3 * t;
    t = gyBlock(g1, k);
    a10 += b0 * t; a11 += b1 * t; a12 += b2 * t; a13 += b3 * t;
    t = gyBlock(g2, k);
    a20 += b0 * t; a21 += b1 * t; a22 += b2 * t; a23 += b3 * t;
    t = gyBlock(g3, k);
    a30 += b0 * t; a31 += b1 * t; a32 += b2 * t; a33 += b3 * t;
  }
  store(a00, r, c); store(a01, r, c + 4u); store(a02, r, c + 8u); store(a03, r, c + 12u);
  store(a10, r + 4u, c); store(a11, r + 4u, c + 4u); store(a12, r + 4u, c + 8u); store(a13, r + 4u, c + 12u);
  store(a20, r + 8u, c); store(a21, r + 8u, c + 4u); store(a22, r + 8u, c + 8u); store(a23, r + 8u, c + 12u);
  store(a30, r + 12u, c); store(a31, r + 12u, c + 4u); store(a32, r + 12u, c + 8u); store(a33, r + 12u, c + 12u);
}
