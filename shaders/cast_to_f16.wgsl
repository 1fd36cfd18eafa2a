// y = f16(x) elementwise over n values (entry point `main`), or y = f16(x · scale[0])
// (`scaled`: a loss-scaled gradient entering an f16 network, the scale kept on the GPU).
// Values beyond f16's range become ±inf, which the loss scale's check then finds.
enable f16;
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f16>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = f16(x[i]);
}

@compute @workgroup_size(256)
fn scaled(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = f16(x[i] * scale[0]);
}
