// gW = gyᵀ·x and gb = Σ_rows gy for gy [k, m] and x [k, n] (k: the batch), gW [m, n] in
// PyTorch's weight layout, with m and n multiples of 4 (the caller zero-pads otherwise).
// Each invocation computes a 16×16 block of gW over one split of the batch: per batch row it
// loads 4 + 4 vec4 and adds their outer products (256 multiply-adds), and the invocations of
// the first block column also sum gy for the bias. With one split the results are added to
// the gradients (parameter gradients accumulate); with several, each split writes its own
// slice of `outW` and `outB` and linear_backward_weight_reduce.wgsl adds them up, so no two
// invocations write one element.
struct Params {
  m: u32,
  n: u32,
  k: u32,
  m4: u32,
  n4: u32,
  tilesN: u32,
  tiles: u32,
  rowsPerSplit: u32,
  accumulate: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<vec4f>;
@group(0) @binding(2) var<storage, read> x: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> outW: array<f32>;
@group(0) @binding(4) var<storage, read_write> outB: array<f32>;

fn outer(a: vec4f, b: vec4f) -> mat4x4f {
  return mat4x4f(a * b.x, a * b.y, a * b.z, a * b.w);
}

// Writes a 4×4 block (column j holds output column c + j) inside the bounds: into the
// gradient, or into this split's slice of the partial sums.
fn store(block: mat4x4f, r: u32, c: u32, base: u32) {
  for (var i = 0u; i < 4u; i++) {
    if (r + i >= params.m) { return; }
    for (var j = 0u; j < 4u; j++) {
      if (c + j < params.n) {
        let o = base + (r + i) * params.n + c + j;
        outW[o] = select(0.0, outW[o], params.accumulate == 1u) + block[j][i];
      }
    }
  }
}

fn storeBias(sum: vec4f, r: u32, base: u32) {
  for (var i = 0u; i < 4u; i++) {
    if (r + i < params.m) {
      let o = base + r + i;
      outB[o] = select(0.0, outB[o], params.accumulate == 1u) + sum[i];
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
  let split = index / params.tiles;
  let tile = index % params.tiles;
  let r = (tile / params.tilesN) * 16u;
  let c = (tile % params.tilesN) * 16u;
  let first = split * params.rowsPerSplit;
  if (first >= params.k) { return; }
  let last = min(first + params.rowsPerSplit, params.k);
  // vec4 columns past the edge are clamped to the last one; their results are not stored.
  let lastRow = params.m4 - 1u;
  let r0 = min(r / 4u, lastRow);
  let r1 = min(r / 4u + 1u, lastRow);
  let r2 = min(r / 4u + 2u, lastRow);
  let r3 = min(r / 4u + 3u, lastRow);
  let lastCol = params.n4 - 1u;
  let c0 = min(c / 4u, lastCol);
  let c1 = min(c / 4u + 1u, lastCol);
  let c2 = min(c / 4u + 2u, lastCol);
  let c3 = min(c / 4u + 3u, lastCol);
  var a00 = mat4x4f(); var a01 = mat4x4f(); var a02 = mat4x4f(); var a03 = mat4x4f();
  var a10 = mat4x4f(); var a11 = mat4x4f(); var a12 = mat4x4f(); var a13 = mat4x4f();
  var a20 = mat4x4f(); var a21 = mat4x4f(); var a22 = mat4x4f(); var a23 = mat4x4f();
  var a30 = mat4x4f(); var a31 = mat4x4f(); var a32 = mat4x4f(); var a33 = mat4x4f();
  var s0 = vec4f(); var s1 = vec4f(); var s2 = vec4f(); var s3 = vec4f();
  for (var k = first; k < last; k++) {
    let g = k * params.m4;
    let g0 = gy[g + r0]; let g1 = gy[g + r1]; let g2 = gy[g + r2]; let g3 = gy[g + r3];
    let o = k * params.n4;
    let x0 = x[o + c0]; let x1 = x[o + c1]; let x2 = x[o + c2]; let x3 = x[o + c3];
    a00 += outer(g0, x0); a01 += outer(g0, x1); a02 += outer(g0, x2); a03 += outer(g0, x3);
    a10 += outer(g1, x0); a11 += outer(g1, x1); a12 += outer(g1, x2); a13 += outer(g1, x3);
    a20 += outer(g2, x0); a21 += outer(g2, x1); a22 += outer(g2, x2); a23 += outer(g2, x3);
    a30 += outer(g3, x0); a31 += outer(g3, x1); a32 += outer(g3, x2); a33 += outer(g3, x3);
    s0 += g0; s1 += g1; s2 += g2; s3 += g3;
  }
  let base = split * params.m * params.n;
  store(a00, r, c, base); store(a01, r, c + 4u, base); store(a02, r, c + 8u, base); store(a03, r, c + 12u, base);
  store(a10, r + 4u, c, base); store(a11, r + 4u, c + 4u, base); store(a12, r + 4u, c + 8u, base); store(a13, r + 4u, c + 12u, base);
  store(a20, r + 8u, c, base); store(a21, r + 8u, c + 4u, base); store(a22, r + 8u, c + 8u, base); store(a23, r + 8u, c + 12u, base);
  store(a30, r + 12u, c, base); store(a31, r + 12u, c + 4u, base); store(a32, r + 12u, c + 8u, base); store(a33, r + 12u, c + 12u, base);
  if (c == 0u) {
    let biasBase = split * params.m;
    storeBias(s0, r, biasBase); storeBias(s1, r + 4u, biasBase); storeBias(s2, r + 8u, biasBase); storeBias(s3, r + 12u, biasBase);
  }
}
