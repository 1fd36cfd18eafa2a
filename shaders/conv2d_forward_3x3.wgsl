// conv2d_forward specialised to the convolutions that dominate a ResNet: 3×3 kernel,
// padding 1, stride 1 or 2, input and output widths multiples of 4, output not scattered
// (the forward pass, and the input gradient of a stride-1 convolution: the same convolution
// with flipped weights). Same parameters, packed weights, tiles and grid as conv2d_forward,
// which documents the design. Here the input columns a 4-pixel output row needs are aligned
// vec4s plus one or two values (x is bound twice, as f32 and as vec4, for that); the three
// taps of a kernel row are applied to each accumulator at once, which cuts the accumulator
// traffic through memory; and output rows are stored as vec4s.
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
  padded: u32,
  plane_h: u32,
  plane_w: u32,
  step_y: u32,
  offset_y: u32,
  step_x: u32,
  offset_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> x4: array<vec4f>;
@group(0) @binding(3) var<storage, read> w: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4f>;

// The inputs of output columns ox0 .. ox0 + 3 at taps kx = 0, 1, 2 of one input row.
struct Row {
  left: vec4f,
  center: vec4f,
  right: vec4f,
}

// Input row iy of the channel plane starting at row `plane`, columns ox0 − 1 .. ox0 + 4;
// zero in the padding.
fn input_row(plane: u32, iy: i32, ox0: u32) -> Row {
  let ok = u32(iy) < params.in_h;
  let start = (plane + u32(iy)) * params.in_w + ox0;
  let center = select(vec4f(), x4[select(0u, start / 4u, ok)], ok);
  let left_ok = ok && ox0 > 0u;
  let right_ok = ok && ox0 + 4u < params.in_w;
  let left = select(0.0, x[select(0u, start - 1u, left_ok)], left_ok);
  let right = select(0.0, x[select(0u, start + 4u, right_ok)], right_ok);
  return Row(vec4f(left, center.xyz), center, vec4f(center.yzw, right));
}

// The same for stride 2: columns 2·ox0 − 1 .. 2·ox0 + 7, every other one per tap.
fn input_row2(plane: u32, iy: i32, ox0: u32) -> Row {
  let ok = u32(iy) < params.in_h;
  let start = (plane + u32(iy)) * params.in_w + 2u * ox0;
  let a = select(vec4f(), x4[select(0u, start / 4u, ok)], ok);
  let left_ok = ok && ox0 > 0u;
  let b_ok = ok && 2u * ox0 + 4u < params.in_w;
  let left = select(0.0, x[select(0u, start - 1u, left_ok)], left_ok);
  let b = select(vec4f(), x4[select(0u, start / 4u + 1u, b_ok)], b_ok);
  return Row(vec4f(left, a.y, a.w, b.y), vec4f(a.x, a.z, b.x, b.z), vec4f(a.y, a.w, b.y, b.w));
}

// Input row iy for the given stride (a constant after inlining).
fn strided_row(plane: u32, iy: i32, ox0: u32, stride: u32) -> Row {
  if (stride == 1u) {
    return input_row(plane, iy, ox0);
  }
  return input_row2(plane, iy, ox0);
}

// m + c ⊗ v: column p of m gains the weights c of 4 channels times pixel p's input.
fn outer(m: mat4x4f, c: vec4f, v: vec4f) -> mat4x4f {
  return mat4x4f(
    fma(c, vec4f(v.x), m[0]),
    fma(c, vec4f(v.y), m[1]),
    fma(c, vec4f(v.z), m[2]),
    fma(c, vec4f(v.w), m[3]),
  );
}

// m + the three taps of one kernel row (weights c0, c1, c2 of 4 channels) over row v.
fn taps(m: mat4x4f, c0: vec4f, c1: vec4f, c2: vec4f, v: Row) -> mat4x4f {
  return outer(outer(outer(m, c0, v.left), c1, v.center), c2, v.right);
}

// The packed weights of one tap for output channels co0 .. co0 + 15, column g = 4 channels.
fn weights(i: u32) -> mat4x4f {
  return mat4x4f(w[i], w[i + 1u], w[i + 2u], w[i + 3u]);
}

// Stores output row oy, columns ox0 .. ox0 + 3 of the 4 channels from co, given as m's
// columns (one pixel each); the 4 columns exist, since the width is a multiple of 4.
fn store(n: u32, oy: u32, ox0: u32, co: u32, m: mat4x4f) {
  if (oy >= params.out_h) { return; }
  let plane = params.plane_h * params.plane_w / 4u;
  let i = (n * params.out_channels + co) * plane + (oy * params.plane_w + ox0) / 4u;
  let t = transpose(m);
  if (co < params.out_channels) { y[i] = t[0]; }
  if (co + 1u < params.out_channels) { y[i + plane] = t[1]; }
  if (co + 2u < params.out_channels) { y[i + 2u * plane] = t[2]; }
  if (co + 3u < params.out_channels) { y[i + 3u * plane] = t[3]; }
}

// One entry point per stride, so that the stride is a literal and each compiles to
// straight-line code.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  convolve(gid, wid, 1u);
}

@compute @workgroup_size(64)
fn main_stride2(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  convolve(gid, wid, 2u);
}

fn convolve(gid: vec3u, wid: vec3u, stride: u32) {
  let tiles_x = (params.out_w + 3u) / 4u;
  let tiles = tiles_x * ((params.out_h + 3u) / 4u);
  if (gid.x >= params.batch * tiles) { return; }
  let n = gid.x / tiles;
  let oy0 = gid.x % tiles / tiles_x * 4u;
  let ox0 = gid.x % tiles % tiles_x * 4u;
  let co0 = wid.y * 16u;
  let w_row = params.padded / 4u;
  // acc[4·r + g][p]: output row oy0 + r, column ox0 + p, channels co0 + 4g .. co0 + 4g + 3.
  var acc: array<mat4x4f, 16>;
  for (var ci = 0u; ci < params.in_channels; ci++) {
    let plane = (n * params.in_channels + ci) * params.in_h;
    for (var ky = 0u; ky < 3u; ky++) {
      let iy = i32(oy0 * stride + ky) - 1;
      let s = i32(stride);
      let v0 = strided_row(plane, iy, ox0, stride);
      let v1 = strided_row(plane, iy + s, ox0, stride);
      let v2 = strided_row(plane, iy + 2 * s, ox0, stride);
      let v3 = strided_row(plane, iy + 3 * s, ox0, stride);
      let wi = (ci * 3u + ky) * 3u * w_row + co0 / 4u;
      let k0 = weights(wi);
      let k1 = weights(wi + w_row);
      let k2 = weights(wi + 2u * w_row);
      acc[0] = taps(acc[0], k0[0], k1[0], k2[0], v0);
      acc[1] = taps(acc[1], k0[1], k1[1], k2[1], v0);
      acc[2] = taps(acc[2], k0[2], k1[2], k2[2], v0);
      acc[3] = taps(acc[3], k0[3], k1[3], k2[3], v0);
      acc[4] = taps(acc[4], k0[0], k1[0], k2[0], v1);
      acc[5] = taps(acc[5], k0[1], k1[1], k2[1], v1);
      acc[6] = taps(acc[6], k0[2], k1[2], k2[2], v1);
      acc[7] = taps(acc[7], k0[3], k1[3], k2[3], v1);
      acc[8] = taps(acc[8], k0[0], k1[0], k2[0], v2);
      acc[9] = taps(acc[9], k0[1], k1[1], k2[1], v2);
      acc[10] = taps(acc[10], k0[2], k1[2], k2[2], v2);
      acc[11] = taps(acc[11], k0[3], k1[3], k2[3], v2);
      acc[12] = taps(acc[12], k0[0], k1[0], k2[0], v3);
      acc[13] = taps(acc[13], k0[1], k1[1], k2[1], v3);
      acc[14] = taps(acc[14], k0[2], k1[2], k2[2], v3);
      acc[15] = taps(acc[15], k0[3], k1[3], k2[3], v3);
    }
  }
  store(n, oy0, ox0, co0, acc[0]);
  store(n, oy0, ox0, co0 + 4u, acc[1]);
  store(n, oy0, ox0, co0 + 8u, acc[2]);
  store(n, oy0, ox0, co0 + 12u, acc[3]);
  store(n, oy0 + 1u, ox0, co0, acc[4]);
  store(n, oy0 + 1u, ox0, co0 + 4u, acc[5]);
  store(n, oy0 + 1u, ox0, co0 + 8u, acc[6]);
  store(n, oy0 + 1u, ox0, co0 + 12u, acc[7]);
  store(n, oy0 + 2u, ox0, co0, acc[8]);
  store(n, oy0 + 2u, ox0, co0 + 4u, acc[9]);
  store(n, oy0 + 2u, ox0, co0 + 8u, acc[10]);
  store(n, oy0 + 2u, ox0, co0 + 12u, acc[11]);
  store(n, oy0 + 3u, ox0, co0, acc[12]);
  store(n, oy0 + 3u, ox0, co0 + 4u, acc[13]);
  store(n, oy0 + 3u, ox0, co0 + 8u, acc[14]);
  store(n, oy0 + 3u, ox0, co0 + 12u, acc[15]);
}
