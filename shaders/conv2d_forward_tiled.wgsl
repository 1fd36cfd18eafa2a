// Convolution for GPUs: an implicit GEMM, y[co, pixel] = Σ_k w[k, co] · im2col(x)[k, pixel],
// k = (input channel, tap), staged through workgroup memory 16 values of k at a time. A
// workgroup computes a 64-channel × 64-pixel tile, each of its 256 invocations a 4 × 4 block.
// Same parameters, packed weights (64-column multiple) and output placement as
// conv2d_forward, so it also computes the input gradient one stride phase at a time.
// Grid: (ceil(batch · out_h · out_w / 64), padded / 64).
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
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// 16 rows of k by 64 channels (weights) and by 64 pixels (inputs), as vec4s: 8 KiB.
var<workgroup> w_tile: array<vec4f, 256>;
var<workgroup> x_tile: array<vec4f, 256>;

// Stores output channel co of output pixel p (flat over batch, rows, columns), if both exist.
fn store(co: u32, p: u32, value: f32) {
  let pixels = params.out_h * params.out_w;
  if (co >= params.out_channels || p >= params.batch * pixels) { return; }
  let n = p / pixels;
  let oy = p % pixels / params.out_w;
  let ox = p % params.out_w;
  let plane = params.plane_h * params.plane_w;
  let row = oy * params.step_y + params.offset_y;
  y[(n * params.out_channels + co) * plane + row * params.plane_w + ox * params.step_x +
    params.offset_x] = value;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u) {
  let p0 = wid.x * 64u;
  let co0 = wid.y * 64u;
  let taps = params.kh * params.kw;
  let k_total = params.in_channels * taps;
  let pixels = params.out_h * params.out_w;
  // This invocation stages row k0 + li / 16 of the weights (channels co0 + 4·(li % 16) ..)
  // and of the inputs (pixels p0 + 4·(li % 16) .. + 3) of every slice...
  let k_row = li / 16u;
  var base: array<u32, 4>;
  var iy0: array<i32, 4>;
  var ix0: array<i32, 4>;
  for (var j = 0u; j < 4u; j++) {
    let p = p0 + li % 16u * 4u + j;
    let n = p / pixels;
    base[j] = n * params.in_channels * params.in_h;
    // Pixels past the end read nothing: their window starts below the image.
    let iy = i32(p % pixels / params.out_w * params.stride) - params.pad_y;
    iy0[j] = select(-1 - i32(params.kh), iy, p < params.batch * pixels);
    ix0[j] = i32(p % params.out_w * params.stride) - params.pad_x;
  }
  // ...and computes channels co0 + 4·ty .. + 3 at pixels p0 + 4·tx .. + 3.
  let tx = li % 16u;
  let ty = li / 16u;
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < k_total; k0 += 16u) {
    let k = k0 + k_row;
    let k_ok = k < k_total;
    let wi = k * (params.padded / 4u) + co0 / 4u + tx;
    w_tile[li] = select(vec4f(), w[select(0u, wi, k_ok)], k_ok);
    let ci = k / taps;
    let ky = i32(k % taps / params.kw);
    let kx = i32(k % params.kw);
    var v: vec4f;
    for (var j = 0u; j < 4u; j++) {
      let iy = iy0[j] + ky;
      let ix = ix0[j] + kx;
      let ok = k_ok && u32(iy) < params.in_h && u32(ix) < params.in_w;
      let i = ((base[j] + ci * params.in_h) + u32(iy)) * params.in_w + u32(ix);
      v[j] = select(0.0, x[select(0u, i, ok)], ok);
    }
    x_tile[li] = v;
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a = w_tile[kk * 16u + ty];
      let b = x_tile[kk * 16u + tx];
      acc[0] = fma(vec4f(a.x), b, acc[0]);
      acc[1] = fma(vec4f(a.y), b, acc[1]);
      acc[2] = fma(vec4f(a.z), b, acc[2]);
      acc[3] = fma(vec4f(a.w), b, acc[3]);
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      store(co0 + 4u * ty + i, p0 + 4u * tx + j, acc[i][j]);
    }
  }
}
