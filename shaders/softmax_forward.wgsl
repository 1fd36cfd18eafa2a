// y = softmax(scale·x) over the first `cols` values of each row of x [rows, width], width
// being cols rounded up to a multiple of 4 (attention: scale = 1/√head_dim, cols = T); the
// padding of each row of y is zeroed, so a vec4 product over it adds nothing. Rows are read
// as vec4s, the last one masked. scale > 0, so the row maximum of x gives that of
// scale·x. One invocation per row, 64 a group. In either precision (see inPrecision): x and
// y are activations; the maximum, the sum and every exponential are f32 (as PyTorch's
// autocast keeps softmax in f32), and y is rounded once: the exponentials are taken again
// after the sum rather than stored and rescaled.
alias act = f32;
struct Params { rows: u32, cols: u32, width: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<act>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<act>>;

// exp(scale·(x − top)) of the vector at `at`, whose columns are `columns`; 0 past `cols`.
fn exponentials(at: u32, columns: vec4u, top: f32) -> vec4f {
  let e = exp((vec4f(x[at]) - top) * params.scale);
  return select(vec4f(0.0), e, columns < vec4u(params.cols));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * (params.width / 4u);
  let vectors = (params.cols + 3u) / 4u;
  let lane = vec4u(0u, 1u, 2u, 3u);
  var largest = vec4f(-3.4e38);
  for (var i = 0u; i < vectors; i++) {
    let valid = 4u * i + lane < vec4u(params.cols);
    largest = max(largest, select(vec4f(-3.4e38), vec4f(x[base + i]), valid));
  }
  let top = max(max(largest.x, largest.y), max(largest.z, largest.w));
  var sum = 0.0;
  for (var i = 0u; i < vectors; i++) {
    let e = exponentials(base + i, 4u * i + lane, top);
    sum += e.x + e.y + e.z + e.w;
  }
  let inverse = 1.0 / sum;
  for (var i = 0u; i < vectors; i++) {
    y[base + i] = vec4<act>(exponentials(base + i, 4u * i + lane, top) * inverse);
  }
}
