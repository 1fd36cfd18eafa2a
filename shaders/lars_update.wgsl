// LARS, stage 3 of 3, over the flat parameter block (classic momentum, as SimCLR):
//   g' = g + wd·p for weights, g for biases and batch-norm parameters
//   v ← μ v + lr · trust · g',  p ← p − v
// with the trust ratio of the element's segment from stage 2 (1 where not adapted). Each
// segment's learning rate (the run's, maybe scaled) is in a storage buffer written before
// each submit.
struct Params { n: u32, momentum: f32, weightDecay: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> learningRates: array<f32>;
// Per 64-element chunk of the block: the number of its elements that belong to a parameter
// (bits 0–6; the rest is alignment padding), whether its segment is a weight (bit 7), and
// the segment's index (bits 8–31).
@group(0) @binding(2) var<storage, read> chunks: array<u32>;
@group(0) @binding(3) var<storage, read> trust: array<f32>;
@group(0) @binding(4) var<storage, read_write> param: array<f32>;
@group(0) @binding(5) var<storage, read> grad: array<f32>;
@group(0) @binding(6) var<storage, read_write> momentumBuffer: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let chunk = chunks[i >> 6u];
  if ((i & 63u) >= (chunk & 127u)) { return; }
  let p = param[i];
  let decay = select(0.0, params.weightDecay, (chunk & 128u) != 0u);
  let g = grad[i] + decay * p;
  let segment = chunk >> 8u;
  let v = params.momentum * momentumBuffer[i] + learningRates[segment] * trust[segment] * g;
  momentumBuffer[i] = v;
  param[i] = p - v;
}
