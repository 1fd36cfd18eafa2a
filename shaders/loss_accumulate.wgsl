// sum[0] += loss[0]: a running sum of a training step's loss, appended to the step so that an
// epoch's mean covers every step while the host reads the sum once, when the epoch ends. One
// invocation: the additions happen in step order, so the sum is the same on every run.
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum: array<f32>;

@compute @workgroup_size(1)
fn main() {
  sum[0] += loss[0];
}
