// Writes the rows x [N, D] into a ring of K rows at its current slot: queue[(slot + i) mod K]
// = x[i]. MoCo enqueues its keys this way after the logits have read the queue; the slot is
// a step value, so one recorded program serves every step.
struct Params { rows: u32, cols: u32, capacity: u32 }
struct Step { slot: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> queue: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.rows * params.cols) { return; }
  let row = i / params.cols;
  let slot = (u32(step.slot) + row) % params.capacity;
  queue[slot * params.cols + (i - row * params.cols)] = x[i];
}
