// Stage 2 of per-parameter norms (LARS's trust ratios, gradient clipping), which
// src/gpu/kernels/optim.ts prepends to lars_trust.wgsl and grad_clip_coefficients.wgsl: one
// workgroup of 64 per segment adds up the partial sums (Σ p², Σ g'²) of its pieces from
// stage 1 (lars_norms.wgsl).

// [first piece, end piece) of each segment.
@group(0) @binding(1) var<storage, read> segmentPieces: array<vec2u>;
@group(0) @binding(2) var<storage, read> partials: array<vec2f>;

var<workgroup> partial: array<vec2f, 64>;

// The segment's (Σ p², Σ g'²); all 64 invocations of the workgroup must call it, in uniform
// control flow.
fn segmentSums(segment: u32, lid: u32) -> vec2f {
  let range = segmentPieces[segment];
  var sum = vec2f(0.0);
  for (var i = range.x + lid; i < range.y; i += 64u) { sum += partials[i]; }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  return partial[0];
}
