// gx = gy where the forward output was positive, else 0, in either precision (see
// inPrecision). Reading the output rather than the input lets the forward input buffer be
// reused.
alias act = f32;
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<act>;
@group(0) @binding(2) var<storage, read> gy: array<act>;
@group(0) @binding(3) var<storage, read_write> gx: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  gx[i] = act(select(0.0, f32(gy[i]), f32(y[i]) > 0.0));
}
