// Back through W = v · (g / ‖v‖) row by row, into the gradients of the magnitude g [rows]
// and the direction v [rows, cols], both added to (parameter gradients accumulate):
//   gg += (gW · v) / ‖v‖,   gv += (g / ‖v‖) · (gW − v · (gW · v) / ‖v‖²),
// as torch's weight_norm backward. One invocation per row.
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> norms: array<f32>;
@group(0) @binding(4) var<storage, read> gw: array<f32>;
@group(0) @binding(5) var<storage, read_write> gg: array<f32>;
@group(0) @binding(6) var<storage, read_write> gv: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  let norm = norms[row];
  var projection = 0.0;
  for (var k = 0u; k < params.cols; k++) { projection += gw[base + k] * v[base + k]; }
  gg[row] += projection / norm;
  let scale = g[row] / norm;
  let along = projection / (norm * norm);
  for (var k = 0u; k < params.cols; k++) {
    gv[base + k] += scale * (gw[base + k] - v[base + k] * along);
  }
}
