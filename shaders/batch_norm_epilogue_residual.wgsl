// What batch_norm_forward.wgsl writes for a ResNet block's second batch norm (appended to
// it): max(v + r, 0), the residual join of the shortcut r and its ReLU. The kernel names r's
// binding `residualBinding`.
@group(0) @binding(residualBinding) var<storage, read> r: array<act>;

fn epilogue(v: f32, o: u32) -> f32 { return max(v + f32(r[o]), 0.0); }
