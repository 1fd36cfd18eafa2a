// Exponential moving average of one flat parameter block into another of the same layout
// (the target's segments a prefix of the online block's), as MoCo and BYOL update their
// key or target encoder: t ← rate·t + (1 − rate)·o. The rate changes every step (a cosine
// schedule), so it is a step value; 1 − rate comes from the host in float64, as PyTorch
// computes `1. - m` in Python. Padding is zero in both blocks and stays zero.
struct Params { n: u32 }
struct Step { rate: f32, oneMinusRate: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> online: array<f32>;
@group(0) @binding(3) var<storage, read_write> averaged: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  averaged[i] = averaged[i] * step.rate + online[i] * step.oneMinusRate;
}
