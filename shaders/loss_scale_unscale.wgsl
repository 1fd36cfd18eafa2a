// Loss scaling, after the backward pass: the gradients of the parameters of an f16 network
// (n values from `begin` in the flat gradient block) carry the loss scale; divide it out and
// raise the overflow flag if any is not finite (an inf or NaN: an f16 gradient overflowed),
// so that the step's update is skipped (see LossScale).
struct Params { begin: u32, n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scale: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> overflow: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  // A power of two: multiplying by its reciprocal is exact.
  let g = grads[params.begin + i] * (1.0 / scale[0]);
  grads[params.begin + i] = g;
  // All exponent bits set: inf or NaN (WGSL has no isinf; a compiler may fold x != x away).
  if ((bitcast<u32>(g) & 0x7f800000u) == 0x7f800000u) {
    atomicStore(&overflow[0], 1u);
  }
}
