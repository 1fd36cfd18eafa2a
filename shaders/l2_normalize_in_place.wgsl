// x ← x / max(‖x‖, 1e-12) row by row for x [M, D], in place: SwAV's prototypes brought back
// to unit length after each optimiser step (`F.normalize(w, dim=1)` copied into the weight).
// One invocation per row, as l2_normalize_forward.
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

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
  // Divide rather than multiply by a reciprocal: PyTorch divides.
  let denominator = max(sqrt(sum), normEps);
  for (var k = 0u; k < params.cols; k++) { x[base + k] = x[base + k] / denominator; }
}
