// ReLU's backward folded into batch norm's (appended to batch_norm_backward_reduce.wgsl and
// batch_norm_backward_small.wgsl in place of batch_norm_gradient.wgsl): the reductions read gy
// masked by the fused forward output y > 0 and, as they visit every value once, store it for
// the input-gradient pass and for a residual's shortcut, which receives the same gradient.
// The kernel names the first of the two extra bindings `reluBinding`.
@group(0) @binding(reluBinding) var<storage, read> y: array<f32>;
@group(0) @binding(reluBinding + 1) var<storage, read_write> masked: array<f32>;

fn gradient(o: u32) -> f32 {
  let g = select(0.0, gy[o], y[o] > 0.0);
  masked[o] = g;
  return g;
}
