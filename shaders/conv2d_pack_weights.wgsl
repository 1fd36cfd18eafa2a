// Rearranges convolution weights w (Cout, Cin, k, k) into the matrix the convolution kernels
// read: row r·taps + tap holds, for reduction channel r and tap (u, v), one value per output
// channel, and each row is padded with zeros to `padded` columns (a multiple of the kernels'
// channel block) so kernels read whole vec4s with no edge test.
// Forward: r = input channel, columns = output channels, tap (u, v) = w[.., .., u, v].
// Input gradient, one stride phase: r = output channel, columns = input channels, and the
// taps are that phase's taps of w, flipped: (u, v) reads w[.., .., y0 + u·dy, x0 + v·dx].
struct Params {
  reduce: u32,      // reduction channels r
  cols: u32,        // real columns; columns up to `padded` are zero
  padded: u32,
  nu: u32,          // taps per column of the packed kernel
  nv: u32,          // taps per row of the packed kernel
  col_stride: u32,  // element step in w from one column to the next
  row_stride: u32,  // element step in w from one reduction channel to the next
  k: u32,           // kernel size of w
  y0: i32,
  dy: i32,
  x0: i32,
  dx: i32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let taps = params.nu * params.nv;
  if (i >= params.reduce * taps * params.padded) { return; }
  let row = i / params.padded;
  let col = i % params.padded;
  let tap = row % taps;
  let ky = u32(params.y0 + i32(tap / params.nv) * params.dy);
  let kx = u32(params.x0 + i32(tap % params.nv) * params.dx);
  let src = col * params.col_stride + (row / taps) * params.row_stride + ky * params.k + kx;
  let ok = col < params.cols;
  packed[i] = select(0.0, w[select(0u, src, ok)], ok);
}
