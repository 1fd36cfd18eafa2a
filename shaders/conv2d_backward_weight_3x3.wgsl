// conv2d_backward_weight specialised to 3×3 kernels, stride 1, padding 1. Same parameters,
// packed operands, split-K and output as conv2d_backward_weight, which documents the design;
// here an invocation sums all 9 taps of 4 input channels for 8 output channels
// (288 accumulators) and walks along each output row with a sliding window: the input the
// taps of one kernel row see at the next pixel is the current one shifted by a column, so
// each pixel loads 3 new input vec4s (one per kernel row) instead of 9.
// Grid: (ceil(x_row · splits / 64), gy_row / 2).
struct Params {
  batch: u32,
  in_channels: u32,
  in_h: u32,
  in_w: u32,
  out_channels: u32,
  out_h: u32,
  out_w: u32,
  kh: u32,
  kw: u32,
  stride: u32,
  pad_y: i32,
  pad_x: i32,
  x_row: u32,
  gy_row: u32,
  entries: u32,
  groups: u32,
  splits: u32,
  rows_per_split: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> gy: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;

// The 4 input channels at column ix of the packed input row starting at `row`.
fn input(row: u32, row_ok: bool, ix: u32) -> vec4f {
  let ok = row_ok && ix < params.in_w;
  return select(vec4f(), x[select(0u, row + ix * params.x_row, ok)], ok);
}

// m + g ⊗ v: column c of m gains input channel c times the 4 output channels g.
fn outer(m: mat4x4f, g: vec4f, v: vec4f) -> mat4x4f {
  return mat4x4f(
    fma(g, vec4f(v.x), m[0]),
    fma(g, vec4f(v.y), m[1]),
    fma(g, vec4f(v.z), m[2]),
    fma(g, vec4f(v.w), m[3]),
  );
}

// Stores block m (input channels of packed group `group` at tap, by output channels
// 4·co4 .. 4·co4 + 3) in conv2d_backward_weight's layout of partial sums.
fn put(split: u32, co4: u32, group: u32, tap: u32, m: mat4x4f) {
  let i = ((split * params.gy_row + co4) * params.groups * 4u + group * 9u + tap) * 4u;
  out[i] = m[0];
  out[i + 1u] = m[1];
  out[i + 2u] = m[2];
  out[i + 3u] = m[3];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  if (gid.x >= params.x_row * params.splits) { return; }
  let group = gid.x % params.x_row;
  let split = gid.x / params.x_row;
  let co0 = wid.y * 8u;
  // acc[2·(3·ky + kx) + g]: tap (ky, kx) by output channels co0 + 4g .. co0 + 4g + 3.
  var acc: array<mat4x4f, 18>;
  let rows = params.batch * params.out_h;
  let end = min(rows, (split + 1u) * params.rows_per_split);
  for (var row = split * params.rows_per_split; row < end; row++) {
    let n = row / params.out_h;
    let iy = i32(row % params.out_h) - 1;
    // Packed input rows iy, iy + 1, iy + 2 (kernel rows 0, 1, 2), and their windows
    // v_r = (x[ox − 1], x[ox], x[ox + 1]) for the current output column ox.
    let ok0 = u32(iy) < params.in_h;
    let ok1 = u32(iy + 1) < params.in_h;
    let ok2 = u32(iy + 2) < params.in_h;
    let r0 = (n * params.in_h + u32(iy)) * params.in_w * params.x_row + group;
    let r1 = r0 + params.in_w * params.x_row;
    let r2 = r1 + params.in_w * params.x_row;
    var v00 = vec4f();
    var v01 = vec4f();
    var v02 = input(r0, ok0, 0u);
    var v10 = vec4f();
    var v11 = vec4f();
    var v12 = input(r1, ok1, 0u);
    var v20 = vec4f();
    var v21 = vec4f();
    var v22 = input(r2, ok2, 0u);
    var q = row * params.out_w * params.gy_row + co0 / 4u;
    for (var ox = 0u; ox < params.out_w; ox++) {
      let g0 = gy[q];
      let g1 = gy[q + 1u];
      q += params.gy_row;
      v00 = v01;
      v01 = v02;
      v02 = input(r0, ok0, ox + 1u);
      v10 = v11;
      v11 = v12;
      v12 = input(r1, ok1, ox + 1u);
      v20 = v21;
      v21 = v22;
      v22 = input(r2, ok2, ox + 1u);
      acc[0] = outer(acc[0], g0, v00);
      acc[1] = outer(acc[1], g1, v00);
      acc[2] = outer(acc[2], g0, v01);
      acc[3] = outer(acc[3], g1, v01);
      acc[4] = outer(acc[4], g0, v02);
      acc[5] = outer(acc[5], g1, v02);
      acc[6] = outer(acc[6], g0, v10);
      acc[7] = outer(acc[7], g1, v10);
      acc[8] = outer(acc[8], g0, v11);
      acc[9] = outer(acc[9], g1, v11);
      acc[10] = outer(acc[10], g0, v12);
      acc[11] = outer(acc[11], g1, v12);
      acc[12] = outer(acc[12], g0, v20);
      acc[13] = outer(acc[13], g1, v20);
      acc[14] = outer(acc[14], g0, v21);
      acc[15] = outer(acc[15], g1, v21);
      acc[16] = outer(acc[16], g0, v22);
      acc[17] = outer(acc[17], g1, v22);
    }
  }
  let co4 = co0 / 4u;
  put(split, co4, group, 0u, acc[0]);
  put(split, co4 + 1u, group, 0u, acc[1]);
  put(split, co4, group, 1u, acc[2]);
  put(split, co4 + 1u, group, 1u, acc[3]);
  put(split, co4, group, 2u, acc[4]);
  put(split, co4 + 1u, group, 2u, acc[5]);
  put(split, co4, group, 3u, acc[6]);
  put(split, co4 + 1u, group, 3u, acc[7]);
  put(split, co4, group, 4u, acc[8]);
  put(split, co4 + 1u, group, 4u, acc[9]);
  put(split, co4, group, 5u, acc[10]);
  put(split, co4 + 1u, group, 5u, acc[11]);
  put(split, co4, group, 6u, acc[12]);
  put(split, co4 + 1u, group, 6u, acc[13]);
  put(split, co4, group, 7u, acc[14]);
  put(split, co4 + 1u, group, 7u, acc[15]);
  put(split, co4, group, 8u, acc[16]);
  put(split, co4 + 1u, group, 8u, acc[17]);
}
