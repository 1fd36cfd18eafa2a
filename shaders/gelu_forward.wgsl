// y = x·Φ(x), the GELU in PyTorch's default (exact, erf) form: Φ(x) = erfc(−x/√2)/2, with
// erfc from erfc.wgsl (prepended). In either precision (see inPrecision): computed in f32.
alias act = f32;
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let v = f32(x[i]);
  y[i] = act(v * 0.5 * erfc(-v * 0.70710678118654752));
}
