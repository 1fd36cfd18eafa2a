// Gradient clipping per parameter, stage 2 of 3: one workgroup per segment adds its pieces'
// partial sums of ‖g‖² (segment_sums.wgsl, prepended; stage 1 is lars_norms with no weight
// decay, whose second component is the gradient's) and sets the factor DINO's
// utils.clip_gradients applies to that parameter's gradient: clip / (‖g‖ + 1e-6) where that
// is below 1, else 1.
struct Params { segments: u32, clip: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> factors: array<f32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let segment = wid.x + wid.y * nwg.x;
  if (segment >= params.segments) { return; }
  let norm = sqrt(segmentSums(segment, lid).y);
  if (lid == 0u) {
    let coefficient = params.clip / (norm + 1e-6);
    factors[segment] = select(1.0, coefficient, coefficient < 1.0);
  }
}
