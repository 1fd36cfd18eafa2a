// Adam's step count per parameter, as PyTorch's `state['step']`: one more after each update
// that reached the parameter. Recorded right after adam_update inside the optimizer's update,
// so a step the loss scale's guard skips counts for no parameter; a frozen parameter (its
// first chunk counts no element as its own, see `chunks` in adam_update) is not counted
// either, as PyTorch skips a parameter whose gradient is None. One invocation per parameter.
struct Params { segments: u32 }
@group(0) @binding(0) var<uniform> params: Params;
// Each parameter's first 64-element chunk in `chunks`.
@group(0) @binding(1) var<storage, read> firstChunks: array<u32>;
@group(0) @binding(2) var<storage, read> chunks: array<u32>;
@group(0) @binding(3) var<storage, read_write> count: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let s = gid.x;
  if (s >= params.segments) { return; }
  if ((chunks[firstChunks[s]] & 127u) != 0u) { count[s] += 1.0; }
}
