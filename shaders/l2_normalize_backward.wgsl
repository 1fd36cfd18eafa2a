// Back through y = x / max(‖x‖, eps) for x [M, D]: gx = (gy − y (y·gy)) / ‖x‖, or gy / eps
// where the norm was clamped (PyTorch's clamp_min passes no gradient to the norm below
// eps). With `accumulate` the result is added to gx (a parameter's gradient: a
// weight-normalised layer's direction v) instead of overwriting it. One invocation per row.
struct Params { rows: u32, cols: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> norms: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;
@group(0) @binding(4) var<storage, read_write> gx: array<f32>;

const normEps = 1e-12;

fn store(i: u32, value: f32) {
  gx[i] = select(value, gx[i] + value, params.accumulate != 0u);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  let norm = norms[row];
  if (norm < normEps) {
    for (var k = 0u; k < params.cols; k++) { store(base + k, gy[base + k] / normEps); }
    return;
  }
  var projection = 0.0;
  for (var k = 0u; k < params.cols; k++) { projection += y[base + k] * gy[base + k]; }
  for (var k = 0u; k < params.cols; k++) {
    store(base + k, (gy[base + k] - y[base + k] * projection) / norm);
  }
}
