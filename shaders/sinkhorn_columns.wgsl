// One half of a Sinkhorn–Knopp iteration of SwAV's codes (distributed_sinkhorn in
// facebookresearch/swav): every prototype's total weight made 1/K, Q[i,j] ← Q[i,j] / Σ_i Q[i,j]
// / K, over the samples i of Q [R, K] from row `skip` on (a queue not yet full is left out;
// `skip` is a step value). The first iteration also makes Q = exp(scores / ε) from the
// prototype scores; SwAV's division of Q by its total before the first iteration is left out,
// as this normalisation cancels it. One invocation per prototype, walking down its column
// (neighbouring invocations read neighbouring values).
struct Params { rows: u32, classes: u32, epsilon: f32, exponentiate: u32 }
struct Step { skip: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> scores: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 256u;
  let k = params.classes;
  if (j >= k) { return; }
  let first = u32(step.skip);
  var sum = 0.0;
  if (params.exponentiate != 0u) {
    for (var i = first; i < params.rows; i++) {
      let e = exp(scores[i * k + j] / params.epsilon);
      q[i * k + j] = e;
      sum += e;
    }
  } else {
    for (var i = first; i < params.rows; i++) { sum += q[i * k + j]; }
  }
  for (var i = first; i < params.rows; i++) { q[i * k + j] = q[i * k + j] / sum / f32(k); }
}
