// The output gradient that batch norm's backward reductions read (appended to
// batch_norm_backward_reduce.wgsl and batch_norm_backward_small.wgsl): gy as it is.
fn gradient(o: u32) -> f32 { return f32(gy[o]); }
