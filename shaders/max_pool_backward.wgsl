// Max pooling's input gradient without atomics: each input value gathers the gradients of
// the output windows that contain it and chose it as their maximum, in row-major output
// order (the order in which PyTorch's scatter adds them). gy and gx are activation gradients
// in either precision (see inPrecision); the sum is f32, rounded once.
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
@group(0) @binding(1) var<storage, read> gy: array<act>;
@group(0) @binding(2) var<storage, read> argmax: array<u32>;
@group(0) @binding(3) var<storage, read_write> gx: array<act>;

// The outputs o with o·stride ≤ p < o·stride + kernel, for p in padded coordinates.
fn windows(p: u32, outSize: u32) -> vec2u {
  let first = select(0u, (p + params.stride - params.kernel) / params.stride, p + 1u > params.kernel);
  return vec2u(first, min(p / params.stride + 1u, outSize));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size) { return; }
  let plane = params.height * params.width;
  let at = i % plane;
  let ih = at / params.width;
  let iw = at % params.width;
  let rows = windows(ih + params.padding, params.outHeight);
  let cols = windows(iw + params.padding, params.outWidth);
  let base = (i / plane) * params.outHeight * params.outWidth;
  var sum = 0.0;
  for (var oh = rows.x; oh < rows.y; oh++) {
    for (var ow = cols.x; ow < cols.y; ow++) {
      let o = base + oh * params.outWidth + ow;
      if (argmax[o] == at) { sum += f32(gy[o]); }
    }
  }
  gx[i] = act(sum);
}
