// Batch norm's backward reductions in one pass when a channel has few values (see
// batch_norm_stats_small.wgsl): one invocation per channel sums gy and gy·(x − mean) over
// its N·HW values and does what batch_norm_backward_combine.wgsl does after the chunked
// reduction: gγ += Σ gy·x̂, gβ += Σ gy, and the input gradient's per-channel coefficients
// (a, b, d, mean) of gx = a·gy + b·(x − mean) + d (training mode: the batch statistics'
// path included; evaluation mode: gx = γ·invstd·gy). The sums are compensated (Neumaier).
// gy is read through `gradient`, as in batch_norm_backward_reduce.wgsl. x and gy are
// activations in either precision (see inPrecision); the sums are f32.
alias act = f32;
struct Params { hw: u32, channels: u32, batch: u32, train: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> gy: array<act>;
@group(0) @binding(3) var<storage, read> saved: array<vec2f>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read_write> gradWeight: array<f32>;
@group(0) @binding(6) var<storage, read_write> gradBias: array<f32>;
@group(0) @binding(7) var<storage, read_write> coefficients: array<vec4f>;
const reluBinding = 8u;

// Adds v to the compensated sum (sum, lost low-order bits).
fn add(acc: vec2f, v: f32) -> vec2f {
  let t = acc.x + v;
  let lost = select((v - t) + acc.x, (acc.x - t) + v, abs(acc.x) >= abs(v));
  return vec2f(t, acc.y + lost);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * 64u;
  if (c >= params.channels) { return; }
  let hw = params.hw;
  let planeStride = params.channels * hw;
  let stats = saved[c];
  var gySum = vec2f();
  var centredSum = vec2f();
  for (var n = 0u; n < params.batch; n++) {
    let base = n * planeStride + c * hw;
    for (var s = 0u; s < hw; s++) {
      let g = gradient(base + s);
      gySum = add(gySum, g);
      centredSum = add(centredSum, g * (f32(x[base + s]) - stats.x));
    }
  }
  let sumGy = gySum.x + gySum.y;
  let sumGyCentred = centredSum.x + centredSum.y;
  let invstd = stats.y;
  let sumGyXhat = sumGyCentred * invstd;
  gradWeight[c] += sumGyXhat;
  gradBias[c] += sumGy;
  let a = weight[c] * invstd;
  let m = f32(params.batch * hw);
  if (params.train == 1u) {
    coefficients[c] = vec4f(a, -a * invstd * sumGyXhat / m, -a * sumGy / m, stats.x);
  } else {
    coefficients[c] = vec4f(a, 0.0, 0.0, stats.x);
  }
}
