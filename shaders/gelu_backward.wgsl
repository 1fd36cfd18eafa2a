// gx = gy·(Φ(x) + x·φ(x)) for the GELU y = x·Φ(x) of gelu_forward.wgsl, φ the standard normal
// density, and erfc from erfc.wgsl (prepended). Reads the forward input (the output does not
// determine x). In either precision (see inPrecision): computed in f32.
alias act = f32;
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> gy: array<act>;
@group(0) @binding(3) var<storage, read_write> gx: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let v = f32(x[i]);
  let cdf = 0.5 * erfc(-v * 0.70710678118654752);
  let pdf = 0.39894228040143268 * exp(-0.5 * v * v);
  gx[i] = act(f32(gy[i]) * (cdf + v * pdf));
}
