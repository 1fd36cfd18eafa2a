// y[p, e] = table[ids[p], e]: the rows of an embedding table [V, D] for ids [P] (tokens).
// An id outside [0, V) gives NaN rows, so bad data cannot pass unseen. One invocation per
// element of y [P, D], 256 a group.
struct Params { size: u32, d: u32, vocab: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size) { return; }
  let id = ids[i / params.d];
  if (id >= params.vocab) {
    // A NaN made at run time: a constant NaN is a shader-creation error in WGSL.
    y[i] = bitcast<f32>(0x7fc00000u | (id & 1u));
    return;
  }
  y[i] = table[id * params.d + i % params.d];
}
