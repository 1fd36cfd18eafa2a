// Convolution for CPU adapters (llvmpipe and other software rasterisers): a direct
// convolution with no workgroup memory. Every storage load costs a loop over the SIMD lanes
// there, so each invocation keeps a 4×4 tile of output pixels for 16 output channels in
// registers (256 accumulators: measured, 8 channels or 8 rows instead ran 40–55% slower),
// and reads each row of input through a sliding window: the taps kx ≡ phase (mod stride)
// see the same input columns shifted by one pixel, so each input value is loaded once per
// (channel, kernel row, phase) instead of once per tap.
//
// y = conv(x, w): x is NCHW, w comes packed by conv2d_pack_weights (16-column multiple).
// The same kernel computes the input gradient one stride phase at a time: x is then the
// output gradient, w the flipped phase weights, and the output pixels are scattered into
// the phase's rows and columns of the gradient (`step_*`, `offset_*`).
// A tile's 4 rows are 4 consecutive rows of the batch's output rows taken in order (image by
// image), so maps less than 4 rows high (a ResNet's last stage on small crops) fill the
// tile from the next images instead of leaving most of it empty.
// Grid: (ceil(tiles / 64), padded / 16) with tiles = ceil(batch · out_h / 4) · ceil(out_w / 4).
struct Params {
  batch: u32,
  in_channels: u32,
  in_h: u32,
  in_w: u32,
  out_channels: u32,
  out_h: u32,         // output pixels computed
  out_w: u32,
  kh: u32,
  kw: u32,
  stride: u32,
  pad_y: i32,
  pad_x: i32,
  padded: u32,        // row length of the packed weights
  plane_h: u32,       // output pixel (oy, ox) is stored at row oy·step_y + offset_y and
  plane_w: u32,       // column ox·step_x + offset_x of a plane_h × plane_w plane
  step_y: u32,
  offset_y: u32,
  step_x: u32,
  offset_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// The input at column ix of the row starting at element `row`; zero in the padding.
fn input(row: u32, row_ok: bool, ix: i32) -> f32 {
  let ok = row_ok && u32(ix) < params.in_w;
  return select(0.0, x[select(0u, row + u32(ix), ok)], ok);
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

// Stores channels co .. co + 3 (when they exist) of the output element at i.
fn store4(i: u32, plane: u32, co: u32, v: vec4f) {
  if (co < params.out_channels) { y[i] = v.x; }
  if (co + 1u < params.out_channels) { y[i + plane] = v.y; }
  if (co + 2u < params.out_channels) { y[i + 2u * plane] = v.z; }
  if (co + 3u < params.out_channels) { y[i + 3u * plane] = v.w; }
}

// Stores the 16 channels from co0 of output pixel (oy, ox) of image n, when it exists.
fn store(ok: bool, n: u32, oy: u32, ox: u32, co0: u32, c0: vec4f, c1: vec4f, c2: vec4f, c3: vec4f) {
  if (!ok || ox >= params.out_w) { return; }
  let plane = params.plane_h * params.plane_w;
  let i = (n * params.out_channels + co0) * plane +
    (oy * params.step_y + params.offset_y) * params.plane_w + ox * params.step_x + params.offset_x;
  store4(i, plane, co0, c0);
  store4(i + 4u * plane, plane, co0 + 4u, c1);
  store4(i + 8u * plane, plane, co0 + 8u, c2);
  store4(i + 12u * plane, plane, co0 + 12u, c3);
}

// Output row r of the batch: its image, its row in the image, and whether it exists.
struct Row {
  n: u32,
  oy: u32,
  ok: bool,
}

fn row_of(r: u32) -> Row {
  return Row(r / params.out_h, r % params.out_h, r < params.batch * params.out_h);
}

// Element of input channel 0, row (oy · stride − pad_y), column 0 of row r's image (the
// input row may lie in the padding: bounds are checked with row_in).
fn row_base(row: Row) -> i32 {
  return (i32(row.n * params.in_channels * params.in_h) +
    i32(row.oy * params.stride) - params.pad_y) * i32(params.in_w);
}

// Whether input row oy · stride − pad_y + ky of an existing output row is inside the image.
fn row_in(row: Row, ky: u32) -> bool {
  return row.ok && u32(i32(row.oy * params.stride) - params.pad_y + i32(ky)) < params.in_h;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tiles_x = (params.out_w + 3u) / 4u;
  let tiles = tiles_x * ((params.batch * params.out_h + 3u) / 4u);
  if (gid.x >= tiles) { return; }
  let r0 = gid.x / tiles_x * 4u;
  let ox0 = gid.x % tiles_x * 4u;
  let co0 = wid.y * 16u;
  let q0 = row_of(r0);
  let q1 = row_of(r0 + 1u);
  let q2 = row_of(r0 + 2u);
  let q3 = row_of(r0 + 3u);
  let b0 = row_base(q0);
  let b1 = row_base(q1);
  let b2 = row_base(q2);
  let b3 = row_base(q3);
  let ix0 = i32(ox0 * params.stride) - params.pad_x;
  let s = i32(params.stride);
  let channel = i32(params.in_h * params.in_w);
  let w_row = params.padded / 4u;
  // acc[4·r + g][p]: output row r0 + r, column ox0 + p, channels co0 + 4g .. co0 + 4g + 3.
  // Constant indices only, so the accumulators stay in registers.
  var acc: array<mat4x4f, 16>;
  for (var ci = 0u; ci < params.in_channels; ci++) {
    for (var ky = 0u; ky < params.kh; ky++) {
      // Where a row is outside its image its start is never read (input() checks ok first).
      let offset = i32(ci) * channel + i32(ky * params.in_w);
      let e0 = u32(b0 + offset);
      let e1 = u32(b1 + offset);
      let e2 = u32(b2 + offset);
      let e3 = u32(b3 + offset);
      let ok0 = row_in(q0, ky);
      let ok1 = row_in(q1, ky);
      let ok2 = row_in(q2, ky);
      let ok3 = row_in(q3, ky);
      let taps = (ci * params.kh + ky) * params.kw;
      for (var phase = 0u; phase < min(params.stride, params.kw); phase++) {
        // v_r holds the inputs of output row r's 4 pixels at the current tap.
        let c = ix0 + i32(phase);
        var v0 = vec4f(0.0, input(e0, ok0, c), input(e0, ok0, c + s), input(e0, ok0, c + 2 * s));
        var v1 = vec4f(0.0, input(e1, ok1, c), input(e1, ok1, c + s), input(e1, ok1, c + 2 * s));
        var v2 = vec4f(0.0, input(e2, ok2, c), input(e2, ok2, c + s), input(e2, ok2, c + 2 * s));
        var v3 = vec4f(0.0, input(e3, ok3, c), input(e3, ok3, c + s), input(e3, ok3, c + 2 * s));
        for (var kx = phase; kx < params.kw; kx += params.stride) {
          let e = ix0 + i32(kx) + 3 * s;
          v0 = vec4f(v0.yzw, input(e0, ok0, e));
          v1 = vec4f(v1.yzw, input(e1, ok1, e));
          v2 = vec4f(v2.yzw, input(e2, ok2, e));
          v3 = vec4f(v3.yzw, input(e3, ok3, e));
          let wi = (taps + kx) * w_row + co0 / 4u;
          let w0 = w[wi];
          let w1 = w[wi + 1u];
          let w2 = w[wi + 2u];
          let w3 = w[wi + 3u];
          acc[0] = outer(acc[0], w0, v0); acc[1] = outer(acc[1], w1, v0);
          acc[2] = outer(acc[2], w2, v0); acc[3] = outer(acc[3], w3, v0);
          acc[4] = outer(acc[4], w0, v1); acc[5] = outer(acc[5], w1, v1);
          acc[6] = outer(acc[6], w2, v1); acc[7] = outer(acc[7], w3, v1);
          acc[8] = outer(acc[8], w0, v2); acc[9] = outer(acc[9], w1, v2);
          acc[10] = outer(acc[10], w2, v2); acc[11] = outer(acc[11], w3, v2);
          acc[12] = outer(acc[12], w0, v3); acc[13] = outer(acc[13], w1, v3);
          acc[14] = outer(acc[14], w2, v3); acc[15] = outer(acc[15], w3, v3);
        }
      }
    }
  }
  store(q0.ok, q0.n, q0.oy, ox0, co0, acc[0][0], acc[1][0], acc[2][0], acc[3][0]);
  store(q0.ok, q0.n, q0.oy, ox0 + 1u, co0, acc[0][1], acc[1][1], acc[2][1], acc[3][1]);
  store(q0.ok, q0.n, q0.oy, ox0 + 2u, co0, acc[0][2], acc[1][2], acc[2][2], acc[3][2]);
  store(q0.ok, q0.n, q0.oy, ox0 + 3u, co0, acc[0][3], acc[1][3], acc[2][3], acc[3][3]);
  store(q1.ok, q1.n, q1.oy, ox0, co0, acc[4][0], acc[5][0], acc[6][0], acc[7][0]);
  store(q1.ok, q1.n, q1.oy, ox0 + 1u, co0, acc[4][1], acc[5][1], acc[6][1], acc[7][1]);
  store(q1.ok, q1.n, q1.oy, ox0 + 2u, co0, acc[4][2], acc[5][2], acc[6][2], acc[7][2]);
  store(q1.ok, q1.n, q1.oy, ox0 + 3u, co0, acc[4][3], acc[5][3], acc[6][3], acc[7][3]);
  store(q2.ok, q2.n, q2.oy, ox0, co0, acc[8][0], acc[9][0], acc[10][0], acc[11][0]);
  store(q2.ok, q2.n, q2.oy, ox0 + 1u, co0, acc[8][1], acc[9][1], acc[10][1], acc[11][1]);
  store(q2.ok, q2.n, q2.oy, ox0 + 2u, co0, acc[8][2], acc[9][2], acc[10][2], acc[11][2]);
  store(q2.ok, q2.n, q2.oy, ox0 + 3u, co0, acc[8][3], acc[9][3], acc[10][3], acc[11][3]);
  store(q3.ok, q3.n, q3.oy, ox0, co0, acc[12][0], acc[13][0], acc[14][0], acc[15][0]);
  store(q3.ok, q3.n, q3.oy, ox0 + 1u, co0, acc[12][1], acc[13][1], acc[14][1], acc[15][1]);
  store(q3.ok, q3.n, q3.oy, ox0 + 2u, co0, acc[12][2], acc[13][2], acc[14][2], acc[15][2]);
  store(q3.ok, q3.n, q3.oy, ox0 + 3u, co0, acc[12][3], acc[13][3], acc[14][3], acc[15][3]);
}
