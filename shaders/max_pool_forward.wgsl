// 2-D max pooling over NCHW planes, as PyTorch: padding never wins (windows start at their
// first in-bounds element with −∞ as the running maximum), the first maximum in row-major
// window order wins ties, and NaN propagates. One invocation per output value; it also saves
// the winner's index within its input plane (ih·W + iw) for the backward pass. x and y are
// activations in either precision (see inPrecision): comparing in f32 picks the same winner.
alias act = f32;
struct Params {
  height: u32,
  width: u32,
  outHeight: u32,
  outWidth: u32,
  kernel: u32,
  stride: u32,
  padding: u32,
  size: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

fn isNan(v: f32) -> bool {
  // A bit test: compilers may fold v != v away.
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size) { return; }
  let ow = i % params.outWidth;
  let oh = (i / params.outWidth) % params.outHeight;
  let plane = i / (params.outWidth * params.outHeight);
  // Window bounds in padded coordinates (offset by `padding`), clipped to the input.
  let h0 = max(oh * params.stride, params.padding);
  let h1 = min(oh * params.stride + params.kernel, params.height + params.padding);
  let w0 = max(ow * params.stride, params.padding);
  let w1 = min(ow * params.stride + params.kernel, params.width + params.padding);
  let base = plane * params.height * params.width;
  var best = bitcast<f32>(0xff800000u);
  var index = (h0 - params.padding) * params.width + (w0 - params.padding);
  for (var h = h0; h < h1; h++) {
    for (var w = w0; w < w1; w++) {
      let at = (h - params.padding) * params.width + (w - params.padding);
      let v = f32(x[base + at]);
      if (v > best || isNan(v)) {
        best = v;
        index = at;
      }
    }
  }
  y[i] = act(best);
  argmax[i] = index;
}
