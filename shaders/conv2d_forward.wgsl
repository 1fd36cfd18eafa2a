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
// tile from the next images instead of leaving most of it empty. With the override `paired`
// (maps at most 2 pixels wide: that stage on local crops) each of the tile's vectors holds 2
// pixels of 2 consecutive rows instead of 4 pixels of one, lanes 0–1 and 2–3 sliding
// separately: 8 rows × 2 columns, where 4 × 4 would leave half the lanes empty.
// Grid: (ceil(tiles / 64), padded / 16) with tiles = ceil(batch · out_h / 4) · ceil(out_w / 4),
// paired: ceil(batch · out_h / 8) · ceil(out_w / 2).
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

override paired: bool = false;

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

// A vector's inputs before its first tap at column c: lanes 1–3 of a row's 4 pixels (lane 0
// comes with the first slide), or lanes 1 and 3 of two rows' 2 pixels each when paired.
fn start(ea: u32, oka: bool, eb: u32, okb: bool, c: i32, s: i32) -> vec4f {
  if (paired) { return vec4f(0.0, input(ea, oka, c), 0.0, input(eb, okb, c)); }
  return vec4f(0.0, input(ea, oka, c), input(ea, oka, c + s), input(ea, oka, c + 2 * s));
}

// The next tap: each pixel takes its right neighbour's input, and the last pixel of the row
// (of each row, paired) the input at column e.
fn slide(v: vec4f, ea: u32, oka: bool, eb: u32, okb: bool, e: i32) -> vec4f {
  if (paired) { return vec4f(v.y, input(ea, oka, e), v.w, input(eb, okb, e)); }
  return vec4f(v.yzw, input(ea, oka, e));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let pair = select(0u, 1u, paired);
  let columns = 4u >> pair;
  let tile_rows = 4u << pair;
  let tiles_x = (params.out_w + columns - 1u) / columns;
  let tiles = tiles_x * ((params.batch * params.out_h + tile_rows - 1u) / tile_rows);
  if (gid.x >= tiles) { return; }
  let r0 = gid.x / tiles_x * tile_rows;
  let ox0 = gid.x % tiles_x * columns;
  let co0 = wid.y * 16u;
  // Vector r holds output row a_r (lanes 0–1 when paired, else all four) and b_r (lanes 2–3
  // when paired, else a_r again).
  let a0 = row_of(r0);
  let b0 = row_of(r0 + pair);
  let a1 = row_of(r0 + (1u << pair));
  let b1 = row_of(r0 + (1u << pair) + pair);
  let a2 = row_of(r0 + (2u << pair));
  let b2 = row_of(r0 + (2u << pair) + pair);
  let a3 = row_of(r0 + (3u << pair));
  let b3 = row_of(r0 + (3u << pair) + pair);
  let base_a0 = row_base(a0);
  let base_b0 = row_base(b0);
  let base_a1 = row_base(a1);
  let base_b1 = row_base(b1);
  let base_a2 = row_base(a2);
  let base_b2 = row_base(b2);
  let base_a3 = row_base(a3);
  let base_b3 = row_base(b3);
  let ix0 = i32(ox0 * params.stride) - params.pad_x;
  let s = i32(params.stride);
  let channel = i32(params.in_h * params.in_w);
  let w_row = params.padded / 4u;
  // acc[4·r + g][p]: lane p of vector r, channels co0 + 4g .. co0 + 4g + 3.
  // Constant indices only, so the accumulators stay in registers.
  var acc: array<mat4x4f, 16>;
  for (var ci = 0u; ci < params.in_channels; ci++) {
    for (var ky = 0u; ky < params.kh; ky++) {
      // Where a row is outside its image its start is never read (input() checks ok first).
      let offset = i32(ci) * channel + i32(ky * params.in_w);
      let ea0 = u32(base_a0 + offset);
      let eb0 = u32(base_b0 + offset);
      let ea1 = u32(base_a1 + offset);
      let eb1 = u32(base_b1 + offset);
      let ea2 = u32(base_a2 + offset);
      let eb2 = u32(base_b2 + offset);
      let ea3 = u32(base_a3 + offset);
      let eb3 = u32(base_b3 + offset);
      let oka0 = row_in(a0, ky);
      let okb0 = row_in(b0, ky);
      let oka1 = row_in(a1, ky);
      let okb1 = row_in(b1, ky);
      let oka2 = row_in(a2, ky);
      let okb2 = row_in(b2, ky);
      let oka3 = row_in(a3, ky);
      let okb3 = row_in(b3, ky);
      let taps = (ci * params.kh + ky) * params.kw;
      // The new input of a slide lies 3 pixels (1, paired) right of the current tap's first.
      let reach = select(3 * s, s, paired);
      for (var phase = 0u; phase < min(params.stride, params.kw); phase++) {
        // v_r holds the inputs of vector r's 4 pixels at the current tap.
        let c = ix0 + i32(phase);
        var v0 = start(ea0, oka0, eb0, okb0, c, s);
        var v1 = start(ea1, oka1, eb1, okb1, c, s);
        var v2 = start(ea2, oka2, eb2, okb2, c, s);
        var v3 = start(ea3, oka3, eb3, okb3, c, s);
        for (var kx = phase; kx < params.kw; kx += params.stride) {
          let e = ix0 + i32(kx) + reach;
          v0 = slide(v0, ea0, oka0, eb0, okb0, e);
          v1 = slide(v1, ea1, oka1, eb1, okb1, e);
          v2 = slide(v2, ea2, oka2, eb2, okb2, e);
          v3 = slide(v3, ea3, oka3, eb3, okb3, e);
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
  // Lanes 2–3 are columns 0–1 of row b when paired, else columns 2–3 of row a (= b).
  let x2 = ox0 + select(2u, 0u, paired);
  let x3 = x2 + 1u;
  store(a0.ok, a0.n, a0.oy, ox0, co0, acc[0][0], acc[1][0], acc[2][0], acc[3][0]);
  store(a0.ok, a0.n, a0.oy, ox0 + 1u, co0, acc[0][1], acc[1][1], acc[2][1], acc[3][1]);
  store(b0.ok, b0.n, b0.oy, x2, co0, acc[0][2], acc[1][2], acc[2][2], acc[3][2]);
  store(b0.ok, b0.n, b0.oy, x3, co0, acc[0][3], acc[1][3], acc[2][3], acc[3][3]);
  store(a1.ok, a1.n, a1.oy, ox0, co0, acc[4][0], acc[5][0], acc[6][0], acc[7][0]);
  store(a1.ok, a1.n, a1.oy, ox0 + 1u, co0, acc[4][1], acc[5][1], acc[6][1], acc[7][1]);
  store(b1.ok, b1.n, b1.oy, x2, co0, acc[4][2], acc[5][2], acc[6][2], acc[7][2]);
  store(b1.ok, b1.n, b1.oy, x3, co0, acc[4][3], acc[5][3], acc[6][3], acc[7][3]);
  store(a2.ok, a2.n, a2.oy, ox0, co0, acc[8][0], acc[9][0], acc[10][0], acc[11][0]);
  store(a2.ok, a2.n, a2.oy, ox0 + 1u, co0, acc[8][1], acc[9][1], acc[10][1], acc[11][1]);
  store(b2.ok, b2.n, b2.oy, x2, co0, acc[8][2], acc[9][2], acc[10][2], acc[11][2]);
  store(b2.ok, b2.n, b2.oy, x3, co0, acc[8][3], acc[9][3], acc[10][3], acc[11][3]);
  store(a3.ok, a3.n, a3.oy, ox0, co0, acc[12][0], acc[13][0], acc[14][0], acc[15][0]);
  store(a3.ok, a3.n, a3.oy, ox0 + 1u, co0, acc[12][1], acc[13][1], acc[14][1], acc[15][1]);
  store(b3.ok, b3.n, b3.oy, x2, co0, acc[12][2], acc[13][2], acc[14][2], acc[15][2]);
  store(b3.ok, b3.n, b3.oy, x3, co0, acc[12][3], acc[13][3], acc[14][3], acc[15][3]);
}
