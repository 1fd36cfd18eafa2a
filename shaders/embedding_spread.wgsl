// The collapse monitor: the mean over dimensions of the standard deviation (unbiased, over
// the batch) of L2-normalised embeddings ŷ [M, D]. Healthy embeddings spread over the sphere
// give about 1/√D; collapsed ones, all alike, give 0. One workgroup; each invocation takes
// dimensions d, d + 256, … and loops over the rows in a fixed order (deterministic).
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let m = params.rows;
  var total = 0.0;
  for (var d = lid; d < params.cols; d += 256u) {
    var mean = 0.0;
    for (var i = 0u; i < m; i++) { mean += y[i * params.cols + d]; }
    mean /= f32(m);
    var squares = 0.0;
    for (var i = 0u; i < m; i++) {
      let v = y[i * params.cols + d] - mean;
      squares += v * v;
    }
    total += sqrt(squares / f32(max(m, 2u) - 1u));
  }
  partial[lid] = total;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[0] = partial[0] / f32(params.cols); }
}
