// CLIP's symmetric contrastive loss, first pass: the logsumexp of each row (image i against
// every text) and each column (text j against every image) of the logits scale·S, where
// S = I·Tᵀ [N, N] are the cosine similarities of unit embeddings and scale = min(exp(s), 100)
// the learnable temperature (its logarithm s in logitScale[0], clamped at 100 as CLIP's).
// One workgroup of 64 per line: lines 0…N−1 are rows, N…2N−1 columns; writes lse [2N].
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> similarity: array<f32>;
@group(0) @binding(2) var<storage, read> logitScale: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let line = wid.x + wid.y * nwg.x;
  if (line >= 2u * params.n) { return; }
  let n = params.n;
  let scale = min(exp(logitScale[0]), 100.0);
  let column = line >= n;
  let index = select(line, line - n, column);
  var running = emptyRow;
  for (var k = lid; k < n; k += 64u) {
    let at = select(index * n + k, k * n + index, column);
    running = addToRow(running, scale * similarity[at]);
  }
  let stats = rowMaxSum(lid, running);
  if (lid == 0u) { lse[line] = stats.x + log(stats.y); }
}
