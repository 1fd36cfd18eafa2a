// Transposes activations from NCHW to pixel-major order, [N·H·W][C'] with C' ≥ C a multiple
// of 4 and the extra channels zero, so the weight-gradient kernel reads the channels of one
// pixel as whole vec4s.
struct Params {
  batch: u32,
  channels: u32,
  pixels: u32,   // H·W
  padded: u32,   // C'
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<vec4f>;

fn value(n: u32, c: u32, p: u32) -> f32 {
  let ok = c < params.channels;
  return select(0.0, x[select(0u, (n * params.channels + c) * params.pixels + p, ok)], ok);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let groups = params.padded / 4u;
  if (i >= params.batch * params.pixels * groups) { return; }
  let c = i % groups * 4u;
  let p = i / groups % params.pixels;
  let n = i / (groups * params.pixels);
  packed[i] = vec4f(value(n, c, p), value(n, c + 1u, p), value(n, c + 2u, p), value(n, c + 3u, p));
}
