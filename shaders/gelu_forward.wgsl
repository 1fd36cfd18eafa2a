// y = x·Φ(x), the GELU in PyTorch's default (exact, erf) form: Φ(x) = erfc(−x/√2)/2, with
// erfc from erfc.wgsl (prepended).
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let v = x[i];
  y[i] = v * 0.5 * erfc(-v * 0.70710678118654752);
}
