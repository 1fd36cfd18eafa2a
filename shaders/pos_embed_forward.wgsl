// y = x + pos[first + t] for x [N, T, D] and position embeddings pos [R, D], broadcast over
// the batch: `first` skips rows of pos (1 when the class token's row is added elsewhere).
// One invocation per element, 256 a group. In either precision (see inPrecision): x and y
// are activations, pos an f32 parameter; the sum is taken in f32 and rounded once.
alias act = f32;
struct Params { n: u32, td: u32, firstOffset: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  y[i] = act(f32(x[i]) + pos[params.firstOffset + i % params.td]);
}
