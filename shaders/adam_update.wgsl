// One Adam or AdamW step over the flat parameter block, as PyTorch computes it:
//   p ← p · decay                      (AdamW's decoupled decay, 1 − lr·wd; 1 for Adam)
//   g ← g + weightDecay · p             (Adam's L2 decay; 0 for AdamW)
// (both only for decayed parameters)
//   m ← β1 m + (1 − β1) g,  v ← β2 v + (1 − β2) g²
//   p ← p − stepSize · m / (√v / √(1 − β2ᵗ) + eps),  stepSize = lr / (1 − β1ᵗ)
// The per-step values are in a storage buffer written before each submit, so one recorded
// program serves every step; it holds a row per parameter, whose learning rate may be scaled
// (layer-wise decay). Padding between parameters is skipped (see `chunks`).
struct Params {
  n: u32,
  beta1: f32,
  oneMinusBeta1: f32,
  beta2: f32,
  oneMinusBeta2: f32,
  eps: f32,
  weightDecay: f32,
}
struct Step { stepSize: f32, sqrtBiasCorrection2: f32, decay: f32 }
@group(0) @binding(0) var<uniform> params: Params;
// One row per parameter (segment).
@group(0) @binding(1) var<storage, read> steps: array<Step>;
// Per 64-element chunk of the block: the number of its elements that belong to a parameter
// in the low 7 bits (the rest of the chunk is alignment padding); bit 7 set when the
// parameter is decayed (weight decay may exclude biases and normalisation parameters); the
// parameter's segment index in bits 8–31.
@group(0) @binding(2) var<storage, read> chunks: array<u32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read_write> expAvg: array<f32>;
@group(0) @binding(6) var<storage, read_write> expAvgSq: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let chunk = chunks[i >> 6u];
  if ((i & 63u) >= (chunk & 127u)) { return; }
  let decayed = (chunk & 128u) != 0u;
  let step = steps[chunk >> 8u];
  let p = param[i] * select(1.0, step.decay, decayed);
  let g = grad[i] + select(0.0, params.weightDecay, decayed) * p;
  let m = params.beta1 * expAvg[i] + params.oneMinusBeta1 * g;
  let v = params.beta2 * expAvgSq[i] + params.oneMinusBeta2 * g * g;
  expAvg[i] = m;
  expAvgSq[i] = v;
  param[i] = p - step.stepSize * (m / (sqrt(v) / step.sqrtBiasCorrection2 + params.eps));
}
