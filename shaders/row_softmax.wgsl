// The softmax statistics of one row per workgroup of 64, which src/gpu/kernels/multicrop.ts
// prepends to the kernels that need them: each invocation keeps a running (max, sum of
// exp(x − max)) over its share of the row, and the workgroup merges the pairs in a tree.

var<workgroup> partialMax: array<f32, 64>;
var<workgroup> partialSum: array<f32, 64>;

// Stands for −∞ (WGSL has no infinity): exp(lowest − x) is 0 for any finite x.
const lowest = -3.0e38;

// The running (max, sum) before any value.
const emptyRow = vec2f(lowest, 0.0);

// The running (max, sum) with x added.
fn addToRow(running: vec2f, x: f32) -> vec2f {
  if (x > running.x) { return vec2f(x, running.y * exp(running.x - x) + 1.0); }
  return vec2f(running.x, running.y + exp(x - running.x));
}

// The row's (max, Σ exp(x − max)) from every invocation's running pair; all 64 invocations
// of the workgroup must call it, in uniform control flow.
fn rowMaxSum(lid: u32, running: vec2f) -> vec2f {
  partialMax[lid] = running.x;
  partialSum[lid] = running.y;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let m1 = partialMax[lid];
      let m2 = partialMax[lid + stride];
      let top = max(m1, m2);
      partialSum[lid] = partialSum[lid] * exp(m1 - top) + partialSum[lid + stride] * exp(m2 - top);
      partialMax[lid] = top;
    }
    workgroupBarrier();
  }
  return vec2f(partialMax[0], partialSum[0]);
}
