// ẑ = z / max(‖z‖, 1e-12) row by row, as F.normalize(z, dim=1), into ẑ [Mp, Dp]: the rows
// and columns are padded with zeros to multiples of 8 so that the GEMMs that follow load and
// store whole vec4s and 8×8 blocks without bounds checks. One invocation per padded row:
// rows are short (D of 32–128). The unclamped norm is kept for the backward pass.
struct Params { rows: u32, cols: u32, paddedRows: u32, paddedCols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read_write> zhat: array<f32>;
@group(0) @binding(3) var<storage, read_write> norms: array<f32>;

const normEps = 1e-12;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.paddedRows) { return; }
  let out = row * params.paddedCols;
  if (row >= params.rows) {
    for (var k = 0u; k < params.paddedCols; k++) { zhat[out + k] = 0.0; }
    return;
  }
  let base = row * params.cols;
  var sum = 0.0;
  for (var k = 0u; k < params.cols; k++) {
    let v = z[base + k];
    sum += v * v;
  }
  let norm = sqrt(sum);
  norms[row] = norm;
  // Divide rather than multiply by a reciprocal: PyTorch divides.
  let denominator = max(norm, normEps);
  for (var k = 0u; k < params.cols; k++) { zhat[out + k] = z[base + k] / denominator; }
  for (var k = params.cols; k < params.paddedCols; k++) { zhat[out + k] = 0.0; }
}
