// Layer normalisation over the last dimension: y = (x − mean)·rstd·γ + β for each row of
// x [rows, d], with rstd = 1/sqrt(var + eps) (biased variance, as PyTorch's LayerNorm).
// One invocation per row, 64 a group. The mean and variance take two passes over the row
// (a one-pass Σx² loses digits when the mean is large); (mean, rstd) are saved for backward.
// In either precision (see inPrecision): x and y are activations; γ, β, the statistics and
// all arithmetic f32 (as PyTorch's autocast keeps layer_norm in f32).
alias act = f32;
struct Params { rows: u32, d: u32, eps: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<act>;
@group(0) @binding(5) var<storage, read_write> saved: array<vec2f>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.d;
  var sum = 0.0;
  for (var i = 0u; i < params.d; i++) { sum += f32(x[base + i]); }
  let mean = sum / f32(params.d);
  var squares = 0.0;
  for (var i = 0u; i < params.d; i++) {
    let c = f32(x[base + i]) - mean;
    squares += c * c;
  }
  let rstd = 1.0 / sqrt(squares / f32(params.d) + params.eps);
  for (var i = 0u; i < params.d; i++) {
    y[base + i] = act((f32(x[base + i]) - mean) * rstd * weight[i] + bias[i]);
  }
  saved[row] = vec2f(mean, rstd);
}
