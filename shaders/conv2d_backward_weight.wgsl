// Weight gradient for CPU adapters: gw[co, ci, ky, kx] += Σ gy[n, co, oy, ox] ·
// x[n, ci, oy·stride − pad + ky, ox·stride − pad + kx] over a range of output rows (n, oy),
// with no workgroup memory. Both operands come pixel-major from conv2d_pack_activations, so
// one pixel's 16 output-gradient channels are one 16-value load and 4 input channels are one
// vec4: an invocation multiplies 16 output channels by 4 "entries" (4 input channels at one
// tap) — 256 accumulators — pixel by pixel.
// Split-K: invocation (group, split) sums the rows of its split and stores its block of
// partial sums; conv2d_reduce adds the splits into the gradient.
// Grid: (ceil(groups · splits / 64), gy_row / 4), groups = ceil(entries / 4).
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
  x_row: u32,           // packed x: vec4s per pixel, ceil(in_channels / 4)
  gy_row: u32,          // packed gy: vec4s per pixel, a multiple of 4
  entries: u32,         // x_row · kh · kw: (group of 4 input channels, tap) pairs
  groups: u32,          // ceil(entries / 4)
  splits: u32,
  rows_per_split: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> gy: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;

// Input channels 4·group .. 4·group + 3 at tap (ky, kx), as offsets from a pixel's window.
struct Entry {
  group: u32,
  dy: i32,
  dx: i32,
  real: bool,
}

fn entry(e: u32) -> Entry {
  let taps = params.kh * params.kw;
  let tap = e % taps;
  return Entry(
    min(e / taps, params.x_row - 1u),
    i32(tap / params.kw) - params.pad_y,
    i32(tap % params.kw) - params.pad_x,
    e < params.entries,
  );
}

// The entry's 4 input channels seen by the output pixel whose window starts at (iy0, ix0).
fn input(e: Entry, n: u32, iy0: i32, ix0: i32) -> vec4f {
  let iy = iy0 + e.dy;
  let ix = ix0 + e.dx;
  let ok = e.real && u32(iy) < params.in_h && u32(ix) < params.in_w;
  let i = ((n * params.in_h + u32(iy)) * params.in_w + u32(ix)) * params.x_row + e.group;
  return select(vec4f(), x[select(0u, i, ok)], ok);
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

// Stores block m (entry e by output channels 4·co4 .. 4·co4 + 3) as 4 vec4s of the partial
// sums, laid out [split][output channel / 4][entry][input channel % 4] × 4 output channels.
fn put(split: u32, co4: u32, e: u32, m: mat4x4f) {
  let i = ((split * params.gy_row + co4) * params.groups * 4u + e) * 4u;
  out[i] = m[0];
  out[i + 1u] = m[1];
  out[i + 2u] = m[2];
  out[i + 3u] = m[3];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  if (gid.x >= params.groups * params.splits) { return; }
  let e = gid.x % params.groups * 4u;
  let split = gid.x / params.groups;
  let co0 = wid.y * 16u;
  let e0 = entry(e);
  let e1 = entry(e + 1u);
  let e2 = entry(e + 2u);
  let e3 = entry(e + 3u);
  // acc[4·i + g]: entry i by output channels co0 + 4g .. co0 + 4g + 3.
  var acc: array<mat4x4f, 16>;
  let rows = params.batch * params.out_h;
  let end = min(rows, (split + 1u) * params.rows_per_split);
  for (var row = split * params.rows_per_split; row < end; row++) {
    let n = row / params.out_h;
    let iy0 = i32(row % params.out_h * params.stride);
    var q = row * params.out_w * params.gy_row + co0 / 4u;
    for (var ox = 0u; ox < params.out_w; ox++) {
      let ix0 = i32(ox * params.stride);
      let g0 = gy[q];
      let g1 = gy[q + 1u];
      let g2 = gy[q + 2u];
      let g3 = gy[q + 3u];
      q += params.gy_row;
      let v0 = input(e0, n, iy0, ix0);
      let v1 = input(e1, n, iy0, ix0);
      let v2 = input(e2, n, iy0, ix0);
      let v3 = input(e3, n, iy0, ix0);
      acc[0] = outer(acc[0], g0, v0); acc[1] = outer(acc[1], g1, v0);
      acc[2] = outer(acc[2], g2, v0); acc[3] = outer(acc[3], g3, v0);
      acc[4] = outer(acc[4], g0, v1); acc[5] = outer(acc[5], g1, v1);
      acc[6] = outer(acc[6], g2, v1); acc[7] = outer(acc[7], g3, v1);
      acc[8] = outer(acc[8], g0, v2); acc[9] = outer(acc[9], g1, v2);
      acc[10] = outer(acc[10], g2, v2); acc[11] = outer(acc[11], g3, v2);
      acc[12] = outer(acc[12], g0, v3); acc[13] = outer(acc[13], g1, v3);
      acc[14] = outer(acc[14], g2, v3); acc[15] = outer(acc[15], g3, v3);
    }
  }
  let co4 = co0 / 4u;
  put(split, co4, e, acc[0]);
  put(split, co4 + 1u, e, acc[1]);
  put(split, co4 + 2u, e, acc[2]);
  put(split, co4 + 3u, e, acc[3]);
  put(split, co4, e + 1u, acc[4]);
  put(split, co4 + 1u, e + 1u, acc[5]);
  put(split, co4 + 2u, e + 1u, acc[6]);
  put(split, co4 + 3u, e + 1u, acc[7]);
  put(split, co4, e + 2u, acc[8]);
  put(split, co4 + 1u, e + 2u, acc[9]);
  put(split, co4 + 2u, e + 2u, acc[10]);
  put(split, co4 + 3u, e + 2u, acc[11]);
  put(split, co4, e + 3u, acc[12]);
  put(split, co4 + 1u, e + 3u, acc[13]);
  put(split, co4 + 2u, e + 3u, acc[14]);
  put(split, co4 + 3u, e + 3u, acc[15]);
}
