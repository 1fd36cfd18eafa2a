// Overwrites S [M, Mp] with H = (G + Gᵀ) / τ, where G = ∂loss/∂S = (softmax − onehot) / M is
// the gradient of the mean cross-entropy of the masked rows, so that ∂loss/∂ẑ = H ẑ; the
// padding columns become zero. S is symmetric, so softmax_ji = exp(S_ij − lse_j): S_ij serves
// both terms, H comes out symmetric too, and each element is read and written by one
// invocation only, which makes the update in place safe.
struct Params { rows: u32, stride: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> lse: array<f32>;
@group(0) @binding(2) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let m = params.rows;
  let index = gid.x + gid.y * nwg.x * 256u;
  if (index >= m * params.stride) { return; }
  let i = index / params.stride;
  let j = index % params.stride;
  if (i == j || j >= m) {
    s[index] = 0.0;
    return;
  }
  let half = m / 2u;
  // The positive pairing is symmetric: j = pos(i) exactly when i = pos(j).
  let onehot = select(0.0, 2.0, j == i + half || i == j + half);
  let v = s[index];
  s[index] = (exp(v - lse[i]) + exp(v - lse[j]) - onehot) * params.scale;
}
