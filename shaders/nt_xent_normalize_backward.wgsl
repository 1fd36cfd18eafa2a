// Back through ẑ = z / max(‖z‖, eps): gz = (gẑ − ẑ (ẑ·gẑ)) / ‖z‖, or gẑ / eps where the
// norm was clamped (PyTorch's clamp_min passes no gradient to the norm below eps). Reads the
// padded ẑ and gẑ [Mp, Dp] and writes gz [M, D]; one invocation per row.
struct Params { rows: u32, cols: u32, paddedCols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> zhat: array<f32>;
@group(0) @binding(2) var<storage, read> norms: array<f32>;
@group(0) @binding(3) var<storage, read> gzhat: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

const normEps = 1e-12;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let padded = row * params.paddedCols;
  let out = row * params.cols;
  let norm = norms[row];
  if (norm < normEps) {
    for (var k = 0u; k < params.cols; k++) { grad[out + k] = gzhat[padded + k] / normEps; }
    return;
  }
  var projection = 0.0;
  for (var k = 0u; k < params.cols; k++) { projection += zhat[padded + k] * gzhat[padded + k]; }
  for (var k = 0u; k < params.cols; k++) {
    grad[out + k] = (gzhat[padded + k] - zhat[padded + k] * projection) / norm;
  }
}
