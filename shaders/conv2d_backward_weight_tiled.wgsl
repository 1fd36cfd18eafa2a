// Weight gradient for GPUs: an implicit GEMM, gw[co, k] += Σ_q gy[co, q] · im2col(x)[q, k]
// over the output pixels q of one split, k = (input channel, tap), staged through workgroup
// memory 16 pixels at a time. A workgroup computes a 64-channel × 64-k tile, each of its 256
// invocations a 4 × 4 block. It stores the sums of its split as out[split] in the layout of
// the gradient, and conv2d_reduce adds the splits into the gradient.
// Reads x and gy in NCHW. Grid: (ceil(k / 64), ceil(out_channels / 64), splits).
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
  pixels_per_split: u32,   // a multiple of 16
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// 16 pixels by 64 output channels (gy) and by 64 values of k (x), as vec4s: 8 KiB.
var<workgroup> g_tile: array<vec4f, 256>;
var<workgroup> x_tile: array<vec4f, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u) {
  let k0 = wid.x * 64u;
  let co0 = wid.y * 64u;
  let taps = params.kh * params.kw;
  let k_total = params.in_channels * taps;
  let pixels = params.out_h * params.out_w;
  let q_begin = wid.z * params.pixels_per_split;
  let q_end = min(params.batch * pixels, q_begin + params.pixels_per_split);
  // This invocation stages pixel row li % 16 of each slice: output channels and values of k
  // 4·(li / 16) .. + 3 of the tile.
  let row = li % 16u;
  let col = li / 16u * 4u;
  var ci: array<u32, 4>;
  var dy: array<i32, 4>;
  var dx: array<i32, 4>;
  for (var j = 0u; j < 4u; j++) {
    let k = min(k0 + col + j, k_total - 1u);
    ci[j] = k / taps;
    dy[j] = i32(k % taps / params.kw) - params.pad_y;
    dx[j] = i32(k % params.kw) - params.pad_x;
  }
  // ...and computes output channels co0 + 4·ty .. + 3 by k0 + 4·tx .. + 3.
  let tx = li % 16u;
  let ty = li / 16u;
  var acc: array<vec4f, 4>;
  for (var q0 = q_begin; q0 < q_end; q0 += 16u) {
    let q = q0 + row;
    let n = q / pixels;
    let oy = q % pixels / params.out_w;
    let ox = q % params.out_w;
    var g: vec4f;
    var v: vec4f;
    for (var j = 0u; j < 4u; j++) {
      let co = co0 + col + j;
      let g_ok = q < q_end && co < params.out_channels;
      let gi = (n * params.out_channels + co) * pixels + q % pixels;
      g[j] = select(0.0, gy[select(0u, gi, g_ok)], g_ok);
      let iy = i32(oy * params.stride) + dy[j];
      let ix = i32(ox * params.stride) + dx[j];
      let x_ok = q < q_end && k0 + col + j < k_total && u32(iy) < params.in_h &&
        u32(ix) < params.in_w;
      let i = ((n * params.in_channels + ci[j]) * params.in_h + u32(iy)) * params.in_w + u32(ix);
      v[j] = select(0.0, x[select(0u, i, x_ok)], x_ok);
    }
    g_tile[row * 16u + col / 4u] = g;
    x_tile[row * 16u + col / 4u] = v;
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a = g_tile[kk * 16u + ty];
      let b = x_tile[kk * 16u + tx];
      acc[0] = fma(vec4f(a.x), b, acc[0]);
      acc[1] = fma(vec4f(a.y), b, acc[1]);
      acc[2] = fma(vec4f(a.z), b, acc[2]);
      acc[3] = fma(vec4f(a.w), b, acc[3]);
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let co = co0 + 4u * ty + i;
    for (var j = 0u; j < 4u; j++) {
      let k = k0 + 4u * tx + j;
      if (co < params.out_channels && k < k_total) {
        let o = (wid.z * params.out_channels + co) * k_total + k;
        out[o] = acc[i][j];
      }
    }
  }
}
