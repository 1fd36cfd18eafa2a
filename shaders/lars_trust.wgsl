// LARS, stage 2 of 3: one workgroup per segment adds its pieces' partial sums
// (segment_sums.wgsl, prepended) and sets the trust ratio η‖p‖/‖g + wd·p‖ when both norms are
// positive, else 1 (as SimCLR's lars_optimizer.py). Segments excluded from adaptation
// (biases, batch norm) have no pieces and get 1.
struct Params { segments: u32, trustCoefficient: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> trust: array<f32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let segment = wid.x + wid.y * nwg.x;
  if (segment >= params.segments) { return; }
  let norms = sqrt(segmentSums(segment, lid));
  if (lid == 0u) {
    let adapt = norms.x > 0.0 && norms.y > 0.0;
    trust[segment] = select(1.0, params.trustCoefficient * norms.x / norms.y, adapt);
  }
}
