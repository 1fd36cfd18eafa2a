// y = x / max(‖x‖, 1e-12) row by row, as F.normalize(x, dim=1), for x [M, D]; the
// unclamped norm of each row is kept for the backward pass. One invocation per row: rows
// are embeddings (D of 64–4096), and a batch has hundreds of them.
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> norms: array<f32>;

const normEps = 1e-12;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  var sum = 0.0;
  for (var k = 0u; k < params.cols; k++) {
    let v = x[base + k];
    sum += v * v;
  }
  let norm = sqrt(sum);
  norms[row] = norm;
  // Divide rather than multiply by a reciprocal: PyTorch divides.
  let denominator = max(norm, normEps);
  for (var k = 0u; k < params.cols; k++) { y[base + k] = x[base + k] / denominator; }
}
