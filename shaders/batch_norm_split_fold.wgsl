// Folds the S repeats of a pair of per-channel values of split batch norm back into one:
// dst_k[c] = accumulate·dst_k[c] + scale·Σ_s src[k·stride + s·C + c] for k = 0, 1. After the
// forward pass it averages the running statistics (scale 1/S, accumulate 0), as MoCo's
// SplitBatchNorm does; after the backward pass it adds the γ and β gradients of the groups
// into the parameters' (scale 1, accumulate 1: parameter gradients accumulate).
struct Params { channels: u32, splits: u32, stride: u32, scale: f32, accumulate: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> first: array<f32>;
@group(0) @binding(3) var<storage, read_write> second: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * 64u;
  if (c >= params.channels) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var s = 0u; s < params.splits; s++) {
    a += src[s * params.channels + c];
    b += src[params.stride + s * params.channels + c];
  }
  first[c] = params.accumulate * first[c] + params.scale * a;
  second[c] = params.accumulate * second[c] + params.scale * b;
}
