// Adds the split partial sums of linear_backward_weight.wgsl into the weight and bias
// gradients: element i < m·n of the weight, then the m biases. Summed in split order, so the
// result does not depend on scheduling.
struct Params { m: u32, n: u32, splits: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partW: array<f32>;
@group(0) @binding(2) var<storage, read> partB: array<f32>;
@group(0) @binding(3) var<storage, read_write> gw: array<f32>;
@group(0) @binding(4) var<storage, read_write> gb: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let size = params.m * params.n;
  if (i < size) {
    var sum = 0.0;
    for (var s = 0u; s < params.splits; s++) { sum += partW[s * size + i]; }
    gw[i] += sum;
  } else if (i < size + params.m) {
    let o = i - size;
    var sum = 0.0;
    for (var s = 0u; s < params.splits; s++) { sum += partB[s * params.m + o]; }
    gb[o] += sum;
  }
}
