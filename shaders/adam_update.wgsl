// One Adam or AdamW step over the flat parameter block, as PyTorch computes it:
//   p ← p · decay                      (AdamW's decoupled decay, 1 − lr·wd; 1 for Adam)
//   g ← g + weightDecay · p             (Adam's L2 decay; 0 for AdamW)
// (both only for decayed parameters)
//   m ← β1 m + (1 − β1) g,  v ← β2 v + (1 − β2) g²
//   p ← p − stepSize · m / (√v / √(1 − β2ᵗ) + eps),  stepSize = lr / (1 − β1ᵗ)
// The per-step values are in a storage buffer written before each submit, so one recorded
// program serves every step; it holds a row per parameter, whose learning rate may be scaled
// (layer-wise decay). Padding between parameters is skipped (see `chunks`).
//
// t is the parameter's own step count plus one, as PyTorch's `state['step']` counts the
// updates applied to it (adam_count adds one after each update; a step skipped by the loss
// scale's guard, or a frozen parameter, adds none). Where t is the run's step, as in every
// run with no skipped step, the host's bias corrections (float64, as PyTorch computes them in
// Python) are used as they are; otherwise the kernel computes them from t in f32.
struct Params {
  n: u32,
  beta1: f32,
  oneMinusBeta1: f32,
  beta2: f32,
  oneMinusBeta2: f32,
  eps: f32,
  weightDecay: f32,
  // ln β1 and ln β2 (at least −88, so that β = 0 gives βᵗ = 0).
  logBeta1: f32,
  logBeta2: f32,
}
// stepSize and sqrtBiasCorrection2 are the host's for t = hostStep; learningRate is the
// parameter's (the run's times its scale); hostStep is exact in f32 below 2²⁴.
struct Step {
  stepSize: f32,
  sqrtBiasCorrection2: f32,
  decay: f32,
  learningRate: f32,
  hostStep: f32,
}
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
// Per parameter (segment): the updates applied to it so far (exact in f32 below 2²⁴).
@group(0) @binding(7) var<storage, read> count: array<f32>;

// 1 − βᵗ = −expm1(t ln β) in f32. 1 − exp(u) alone loses the small result to exp's rounding
// near 1 (with β2 = 0.999 at t = 1 it would be off by ~1e-4 relative), so small |u| takes
// the series: its truncation error is below |u|⁶/5040 < 5e-8 relative for |u| < 1/4, and for
// |u| ≥ 1/4 the result is at least 0.22, which exp's few-ulp error leaves within ~1e-6.
fn oneMinusPower(logBeta: f32, t: f32) -> f32 {
  let u = t * logBeta;
  if (u > -0.25) {
    return -u * (1.0 + u * (1.0 / 2.0 + u * (1.0 / 6.0 + u * (1.0 / 24.0 + u * (1.0 / 120.0 +
      u * (1.0 / 720.0))))));
  }
  return 1.0 - exp(u);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let chunk = chunks[i >> 6u];
  if ((i & 63u) >= (chunk & 127u)) { return; }
  let decayed = (chunk & 128u) != 0u;
  let segment = chunk >> 8u;
  let step = steps[segment];
  let t = count[segment] + 1.0;
  var stepSize = step.stepSize;
  var sqrtBiasCorrection2 = step.sqrtBiasCorrection2;
  if (t != step.hostStep) {
    stepSize = step.learningRate / oneMinusPower(params.logBeta1, t);
    sqrtBiasCorrection2 = sqrt(oneMinusPower(params.logBeta2, t));
  }
  let p = param[i] * select(1.0, step.decay, decayed);
  let g = grad[i] + select(0.0, params.weightDecay, decayed) * p;
  let m = params.beta1 * expAvg[i] + params.oneMinusBeta1 * g;
  let v = params.beta2 * expAvgSq[i] + params.oneMinusBeta2 * g * g;
  expAvg[i] = m;
  expAvgSq[i] = v;
  param[i] = p - stepSize * (m / (sqrt(v) / sqrtBiasCorrection2 + params.eps));
}
