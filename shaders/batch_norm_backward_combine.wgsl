// Second stage of batch norm's backward reductions: workgroup c adds the chunk sums of
// channel c, accumulates the parameter gradients (gγ += Σ gy·x̂, gβ += Σ gy) and turns the
// input gradient into gx = a·gy + b·(x − mean) + d per channel, saved in `coefficients` as
// (a, b, d, mean). In training mode (batch statistics, whose dependence on x feeds back)
// gx = γ·invstd·(gy − Σgy/M − x̂·Σ(gy·x̂)/M); in evaluation mode gx = γ·invstd·gy.
struct Params { channels: u32, chunks: u32, count: u32, train: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<vec2f>;
@group(0) @binding(2) var<storage, read> saved: array<vec2f>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> gradWeight: array<f32>;
@group(0) @binding(5) var<storage, read_write> gradBias: array<f32>;
@group(0) @binding(6) var<storage, read_write> coefficients: array<vec4f>;

var<workgroup> sums: array<vec2f, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= params.channels) { return; }
  var sum = vec2f();
  for (var j = lid; j < params.chunks; j += 64u) { sum += partial[c * params.chunks + j]; }
  sums[lid] = sum;
  for (var half = 32u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid < half) { sums[lid] += sums[lid + half]; }
  }
  if (lid == 0u) {
    let stats = saved[c];
    let invstd = stats.y;
    let sumGy = sums[0].x;
    let sumGyXhat = sums[0].y * invstd;
    gradWeight[c] += sumGyXhat;
    gradBias[c] += sumGy;
    let a = weight[c] * invstd;
    let m = f32(params.count);
    if (params.train == 1u) {
      coefficients[c] = vec4f(a, -a * invstd * sumGyXhat / m, -a * sumGy / m, stats.x);
    } else {
      coefficients[c] = vec4f(a, 0.0, 0.0, stats.x);
    }
  }
}
