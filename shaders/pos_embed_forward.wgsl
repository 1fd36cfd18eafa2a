// y = x + pos[first + t] for x [N, T, D] and position embeddings pos [R, D], broadcast over
// the batch: `first` skips rows of pos (1 when the class token's row is added elsewhere).
// One invocation per element, 256 a group.
struct Params { n: u32, td: u32, firstOffset: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  y[i] = x[i] + pos[params.firstOffset + i % params.td];
}
