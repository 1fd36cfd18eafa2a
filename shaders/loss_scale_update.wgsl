// Loss scaling, after the (maybe skipped) update, as PyTorch's GradScaler: an overflow halves
// the scale and restarts the count of good steps; `growthInterval` good steps in a row double
// it. One invocation. The count is an f32 (exact to 2²⁴) so that checkpoints keep it as they
// keep every tensor.
struct Params { growthInterval: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> overflow: array<u32>;
@group(0) @binding(2) var<storage, read_write> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> goodSteps: array<f32>;

@compute @workgroup_size(1)
fn main() {
  if (overflow[0] != 0u) {
    scale[0] = scale[0] * 0.5;
    goodSteps[0] = 0.0;
    return;
  }
  goodSteps[0] = goodSteps[0] + 1.0;
  if (goodSteps[0] >= f32(params.growthInterval)) {
    scale[0] = scale[0] * 2.0;
    goodSteps[0] = 0.0;
  }
}
