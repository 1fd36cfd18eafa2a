// Gradient clipping per parameter, stage 2 of 3: one workgroup per segment adds its pieces'
// partial sums of ‖g‖² (stage 1 is lars_norms with no weight decay, whose second component is
// the gradient's) and sets the factor DINO's utils.clip_gradients applies to that parameter's
// gradient: clip / (‖g‖ + 1e-6) where that is below 1, else 1.
struct Params { segments: u32, clip: f32 }
@group(0) @binding(0) var<uniform> params: Params;
// [first piece, end piece) of each segment.
@group(0) @binding(1) var<storage, read> segmentPieces: array<vec2u>;
@group(0) @binding(2) var<storage, read> partials: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> factors: array<f32>;

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let segment = wid.x + wid.y * nwg.x;
  if (segment >= params.segments) { return; }
  let range = segmentPieces[segment];
  var sum = 0.0;
  for (var i = range.x + lid; i < range.y; i += 64u) { sum += partials[i].y; }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let coefficient = params.clip / (sqrt(partial[0]) + 1e-6);
    factors[segment] = select(1.0, coefficient, coefficient < 1.0);
  }
}
