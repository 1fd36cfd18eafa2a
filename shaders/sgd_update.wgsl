// One SGD step over the flat parameter block, as PyTorch computes it (dampening 0, not
// Nesterov): d = g + weightDecay · p; with momentum b ← μ b + d and p ← p − lr · b, without
// it p ← p − lr · d (entry point `without_momentum`, which keeps no buffer); weight decay
// only for decayed parameters. Each parameter's learning rate (the run's, maybe scaled) is in
// a storage buffer written before each submit. Padding is skipped (see `chunks`).
struct Params { n: u32, momentum: f32, weightDecay: f32 }
@group(0) @binding(0) var<uniform> params: Params;
// The learning rate of each parameter (segment).
@group(0) @binding(1) var<storage, read> learningRates: array<f32>;
// Per 64-element chunk of the block: the number of its elements that belong to a parameter
// in the low 7 bits (the rest of the chunk is alignment padding); bit 7 set when the
// parameter is decayed (weight decay may exclude biases and normalisation parameters); the
// parameter's segment index in bits 8–31.
@group(0) @binding(2) var<storage, read> chunks: array<u32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read_write> momentumBuffer: array<f32>;

fn live(i: u32) -> bool {
  return i < params.n && (i & 63u) < (chunks[i >> 6u] & 127u);
}

fn decay(i: u32) -> f32 {
  return select(0.0, params.weightDecay, (chunks[i >> 6u] & 128u) != 0u);
}

fn learningRate(i: u32) -> f32 {
  return learningRates[chunks[i >> 6u] >> 8u];
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (!live(i)) { return; }
  let p = param[i];
  let b = params.momentum * momentumBuffer[i] + (grad[i] + decay(i) * p);
  momentumBuffer[i] = b;
  param[i] = p - learningRate(i) * b;
}

@compute @workgroup_size(256)
fn without_momentum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (!live(i)) { return; }
  let p = param[i];
  param[i] = p - learningRate(i) * (grad[i] + decay(i) * p);
}
