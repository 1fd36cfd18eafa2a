// Split batch norm (MoCo's single-device emulation of shuffle-BN): a batch of N images is
// normalised as S groups with statistics of their own by viewing [N, C, H, W] as
// [N/S, S·C, H, W], so that channel s·C + c of the view is channel c of the images n with
// n mod S = s. This repeats the per-channel γ, β and running statistics S times for that
// view: out[k·stride + s·C + c] = in_k[c] for k = weight, bias, running mean, running var
// (each repeat starts at a multiple of 64 elements so it can be bound on its own).
struct Params { channels: u32, splits: u32, stride: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> runningMean: array<f32>;
@group(0) @binding(4) var<storage, read> runningVar: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.channels * params.splits) { return; }
  let c = i % params.channels;
  out[i] = weight[c];
  out[params.stride + i] = bias[c];
  out[2u * params.stride + i] = runningMean[c];
  out[3u * params.stride + i] = runningVar[c];
}
