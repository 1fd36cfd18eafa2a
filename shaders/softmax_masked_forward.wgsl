// softmax_forward.wgsl with the keys of attention masked: y = softmax(scale·x) over the keys
// j < cols of each row that are not padding (tokens[n, j] ≠ pad) and, when causal, not after
// the query (j ≤ i); every other value of y is zero, so softmax_backward.wgsl gives them no
// gradient. x and y are score rows [N, H, T, width] (width: T rounded up to a multiple of 4),
// row r being query i = r mod T of sample n = r / (H·T); tokens are [N, T]. A row without
// a valid key (never, with [CLS] first) is zero. One invocation per row, 64 a group.
struct Params { rows: u32, cols: u32, width: u32, scale: f32, heads: u32, pad: u32, causal: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let t = params.cols;
  let query = row % t;
  let sample = row / (params.heads * t);
  let last = select(t, query + 1u, params.causal != 0u);
  let base = row * params.width;
  var top = -3.4e38;
  for (var j = 0u; j < last; j++) {
    if (tokens[sample * t + j] != params.pad) { top = max(top, x[base + j]); }
  }
  var sum = 0.0;
  for (var j = 0u; j < params.width; j++) {
    var e = 0.0;
    if (j < last && tokens[sample * t + j] != params.pad) {
      e = exp((x[base + j] - top) * params.scale);
    }
    y[base + j] = e;
    sum += e;
  }
  let inverse = select(0.0, 1.0 / sum, sum > 0.0);
  for (var j = 0u; j < last; j++) { y[base + j] *= inverse; }
}
