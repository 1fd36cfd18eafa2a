// W = v · (g / ‖v‖) row by row, as torch.nn.utils.weight_norm(dim=0) computes a layer's
// weight from its direction v [rows, cols] and magnitude g [rows] (DINO's last layer with
// norm_last_layer False, where g is trained). The norm of each row is kept for the backward
// pass; weight_norm has no epsilon, nor has this. One invocation per row.
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> norms: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  var sum = 0.0;
  for (var k = 0u; k < params.cols; k++) {
    let value = v[base + k];
    sum += value * value;
  }
  let norm = sqrt(sum);
  norms[row] = norm;
  let scale = g[row] / norm;
  for (var k = 0u; k < params.cols; k++) { w[base + k] = v[base + k] * scale; }
}
