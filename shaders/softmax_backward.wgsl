// gx = scale·y·(gy − Σ gy·y) over the first `cols` values of each row, the input gradient of
// softmax_forward.wgsl from its output y; the padding of each row of gx is zeroed, as y's
// is, and gy's is ignored (attention leaves it unwritten). Rows of width cols rounded up to a
// multiple of 4, read as vec4s. One invocation per row, 64 a group. In either precision (see
// inPrecision): y, gy and gx are activations (gradients), the sum and arithmetic f32.
alias act = f32;
struct Params { rows: u32, cols: u32, width: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<vec4<act>>;
@group(0) @binding(2) var<storage, read> gy: array<vec4<act>>;
@group(0) @binding(3) var<storage, read_write> gx: array<vec4<act>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * (params.width / 4u);
  let vectors = (params.cols + 3u) / 4u;
  let lane = vec4u(0u, 1u, 2u, 3u);
  var total = 0.0;
  for (var i = 0u; i < vectors; i++) {
    let g = select(vec4f(0.0), vec4f(gy[base + i]), 4u * i + lane < vec4u(params.cols));
    total += dot(g, vec4f(y[base + i]));
  }
  for (var i = 0u; i < vectors; i++) {
    // y is zero in the padding, which zeroes gx there too.
    let g = select(vec4f(0.0), vec4f(gy[base + i]), 4u * i + lane < vec4u(params.cols));
    gx[base + i] = vec4<act>(params.scale * vec4f(y[base + i]) * (g - total));
  }
}
