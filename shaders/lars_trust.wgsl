// LARS, stage 2 of 3: one workgroup per segment adds its pieces' partial sums and sets the
// trust ratio η‖p‖/‖g + wd·p‖ when both norms are positive, else 1 (as SimCLR's
// lars_optimizer.py). Segments excluded from adaptation (biases, batch norm) have no pieces
// and get 1.
struct Params { segments: u32, trustCoefficient: f32 }
@group(0) @binding(0) var<uniform> params: Params;
// [first piece, end piece) of each segment.
@group(0) @binding(1) var<storage, read> segmentPieces: array<vec2u>;
@group(0) @binding(2) var<storage, read> partials: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> trust: array<f32>;

var<workgroup> partial: array<vec2f, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let segment = wid.x + wid.y * nwg.x;
  if (segment >= params.segments) { return; }
  let range = segmentPieces[segment];
  var sum = vec2f(0.0);
  for (var i = range.x + lid; i < range.y; i += 64u) { sum += partials[i]; }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let norms = sqrt(partial[0]);
    let adapt = norms.x > 0.0 && norms.y > 0.0;
    trust[segment] = select(1.0, params.trustCoefficient * norms.x / norms.y, adapt);
  }
}
