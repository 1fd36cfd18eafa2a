// ReLU's backward folded into batch norm's (appended to batch_norm_backward_reduce.wgsl and
// batch_norm_backward_small.wgsl in place of batch_norm_gradient.wgsl): the reductions read gy
// masked by the fused forward output y > 0 and, as they visit every value once, store it for
// the input-gradient pass and for a residual's shortcut, which receives the same gradient.
// The kernel names the first of the two extra bindings `reluBinding`.
@group(0) @binding(reluBinding) var<storage, read> y: array<act>;
@group(0) @binding(reluBinding + 1) var<storage, read_write> masked: array<act>;

fn gradient(o: u32) -> f32 {
  let g = select(0.0, f32(gy[o]), f32(y[o]) > 0.0);
  // Exact in f16 too: g is gy's value or 0.
  masked[o] = act(g);
  return g;
}
