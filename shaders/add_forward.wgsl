// y = a + b, elementwise: the residual join of a ResNet block. Its backward pass passes the
// gradient unchanged to both inputs, so it needs no kernel; the same kernel sums the two
// gradients where the branches split. In either precision (see inPrecision): the sum is
// taken in f32 and rounded once.
alias act = f32;
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<act>;
@group(0) @binding(2) var<storage, read> b: array<act>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  y[i] = act(f32(a[i]) + f32(b[i]));
}
