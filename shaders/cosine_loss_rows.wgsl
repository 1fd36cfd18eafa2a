// BYOL's regression loss on L2-normalised rows, forward and backward together: row i's loss
// is 2 − 2·p̂ᵢ·ẑᵢ (the squared distance of unit vectors) and the gradient of scale·loss with
// respect to p̂ is −2·scale·ẑ. ẑ is the target network's projection, which gets no
// gradient. One invocation per row.
struct Params { rows: u32, cols: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> prediction: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> rowLoss: array<f32>;
@group(0) @binding(4) var<storage, read_write> gradPrediction: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  var dot = 0.0;
  for (var c = 0u; c < params.cols; c++) {
    let t = targets[base + c];
    dot += prediction[base + c] * t;
    gradPrediction[base + c] = -2.0 * params.scale * t;
  }
  rowLoss[row] = 2.0 - 2.0 * dot;
}
