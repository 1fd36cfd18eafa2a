// γ and β gradients of layer_norm_forward.wgsl: gγ = Σ_rows gy·x̂ and gβ = Σ_rows gy, per
// column. Invocation (chunk, column) sums one chunk of rows; neighbouring invocations read
// neighbouring columns. With one chunk the sums are added to the gradients (parameter
// gradients accumulate); with several, each chunk writes its own row of `outW` and `outB`
// and linear_backward_weight_reduce.wgsl (m = d, n = 1) adds them up in chunk order. In
// either precision (see inPrecision): x and gy are activations, the sums f32.
alias act = f32;
struct Params { rows: u32, d: u32, rowsPerChunk: u32, chunks: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> saved: array<vec2f>;
@group(0) @binding(3) var<storage, read> gy: array<act>;
@group(0) @binding(4) var<storage, read_write> outW: array<f32>;
@group(0) @binding(5) var<storage, read_write> outB: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let chunk = i / params.d;
  let column = i % params.d;
  if (chunk >= params.chunks) { return; }
  let first = chunk * params.rowsPerChunk;
  let last = min(first + params.rowsPerChunk, params.rows);
  var sumW = 0.0;
  var sumB = 0.0;
  for (var row = first; row < last; row++) {
    let stats = saved[row];
    let o = row * params.d + column;
    let g = f32(gy[o]);
    sumW += g * (f32(x[o]) - stats.x) * stats.y;
    sumB += g;
  }
  if (params.accumulate == 1u) {
    outW[column] += sumW;
    outB[column] += sumB;
  } else {
    outW[i] = sumW;
    outB[i] = sumB;
  }
}
