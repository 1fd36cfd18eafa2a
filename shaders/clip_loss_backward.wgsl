// CLIP's symmetric contrastive loss, second pass: for each pair (i, j) the gradient of the
// loss L = (Σ_i CE(row i, i) + Σ_j CE(column j, j)) / 2N with respect to the logits,
// P_ij = (softmax of row i + softmax of column j − 2·[i = j]) / 2N, from the logsumexps of
// clip_loss_logsumexp.wgsl; writes the similarities' gradient G = scale·P and P·S (whose sum
// is the loss's derivative by the scale). One invocation per pair, 256 a group.
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> similarity: array<f32>;
@group(0) @binding(2) var<storage, read> logitScale: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> gradSimilarity: array<f32>;
@group(0) @binding(5) var<storage, read_write> scaleTerms: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let at = gid.x + gid.y * nwg.x * 256u;
  let n = params.n;
  if (at >= n * n) { return; }
  let i = at / n;
  let j = at % n;
  let scale = min(exp(logitScale[0]), 100.0);
  let logit = scale * similarity[at];
  let diagonal = select(0.0, 2.0, i == j);
  let p = (exp(logit - lse[i]) + exp(logit - lse[n + j]) - diagonal) / f32(2u * n);
  gradSimilarity[at] = scale * p;
  scaleTerms[at] = p * similarity[at];
}
