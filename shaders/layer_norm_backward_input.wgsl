// Input gradient of layer_norm_forward.wgsl: with x̂ = (x − mean)·rstd and g = gy·γ,
// gx = rstd·(g − mean(g) − x̂·mean(g·x̂)) per row. One invocation per row, 64 a group; x̂ is
// recomputed from the saved (mean, rstd) rather than stored. In either precision (see
// inPrecision): x, gy and gx are activations (gradients), γ and the sums f32.
alias act = f32;
struct Params { rows: u32, d: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> saved: array<vec2f>;
@group(0) @binding(4) var<storage, read> gy: array<act>;
@group(0) @binding(5) var<storage, read_write> gx: array<act>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.d;
  let stats = saved[row];
  var sumG = 0.0;
  var sumGX = 0.0;
  for (var i = 0u; i < params.d; i++) {
    let g = f32(gy[base + i]) * weight[i];
    sumG += g;
    sumGX += g * (f32(x[base + i]) - stats.x) * stats.y;
  }
  let meanG = sumG / f32(params.d);
  let meanGX = sumGX / f32(params.d);
  for (var i = 0u; i < params.d; i++) {
    let xhat = (f32(x[base + i]) - stats.x) * stats.y;
    gx[base + i] = act(stats.y * (f32(gy[base + i]) * weight[i] - meanG - xhat * meanGX));
  }
}
