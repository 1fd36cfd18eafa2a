// LARS, stage 1 of 3: partial sums of ‖p‖² and ‖g + wd·p‖² over one piece of a weight
// segment per workgroup. Pieces are at most a few thousand elements, so a large weight
// (512×512×3×3 = 2.4M) is spread over many workgroups; stage 2 adds a segment's pieces.
struct Params { pieces: u32, weightDecay: f32 }
@group(0) @binding(0) var<uniform> params: Params;
// [begin, end) of each piece, in elements of the flat block.
@group(0) @binding(1) var<storage, read> pieces: array<vec2u>;
@group(0) @binding(2) var<storage, read> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
// (Σ p², Σ (g + wd·p)²) per piece.
@group(0) @binding(4) var<storage, read_write> partials: array<vec2f>;

var<workgroup> partial: array<vec2f, 256>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let piece = wid.x + wid.y * nwg.x;
  if (piece >= params.pieces) { return; }
  let range = pieces[piece];
  var sum = vec2f(0.0);
  for (var i = range.x + lid; i < range.y; i += 256u) {
    let p = param[i];
    let g = grad[i] + params.weightDecay * p;
    sum += vec2f(p * p, g * g);
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[piece] = partial[0]; }
}
