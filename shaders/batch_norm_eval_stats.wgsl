// Batch norm in evaluation mode normalises with the running statistics: saves them as the
// (mean, 1/sqrt(var + eps)) pairs that the forward and backward kernels read in both modes.
struct Params { channels: u32, eps: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> runningMean: array<f32>;
@group(0) @binding(2) var<storage, read> runningVar: array<f32>;
@group(0) @binding(3) var<storage, read_write> saved: array<vec2f>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= params.channels) { return; }
  saved[c] = vec2f(runningMean[c], 1.0 / sqrt(runningVar[c] + params.eps));
}
