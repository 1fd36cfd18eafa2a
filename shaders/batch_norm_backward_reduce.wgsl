// First stage of batch norm's backward reductions, chunked as batch_norm_stats.wgsl:
// workgroup g sums gy and gy·(x − mean) over chunk g % chunks of channel g / chunks;
// batch_norm_backward_combine.wgsl adds the chunks up. gy is read through `gradient`, from
// batch_norm_gradient.wgsl or, with a ReLU fused, batch_norm_gradient_relu.wgsl. x and gy
// are activations in either precision (see inPrecision); the sums are f32.
alias act = f32;
struct Params {
  hw: u32,
  channels: u32,
  count: u32,
  chunk: u32,
  chunks: u32,
  stepAddress: u32,
  stepPosition: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> gy: array<act>;
@group(0) @binding(3) var<storage, read> saved: array<vec2f>;
@group(0) @binding(4) var<storage, read_write> partial: array<vec2f>;
const reluBinding = 5u;

var<workgroup> sums: array<vec2f, 64>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let group = wid.x + wid.y * nwg.x;
  let c = group / params.chunks;
  if (c >= params.channels) { return; }
  let start = (group % params.chunks) * params.chunk;
  let end = min(start + params.chunk, params.count);
  let hw = params.hw;
  let mean = saved[c].x;
  var m = start + lid;
  var s = m % hw;
  var address = ((m / hw) * params.channels + c) * hw + s;
  let wrap = (params.channels - 1u) * hw;
  var sum = vec2f();
  for (; m < end; m += 64u) {
    let g = gradient(address);
    sum += vec2f(g, g * (f32(x[address]) - mean));
    s += params.stepPosition;
    address += params.stepAddress;
    if (s >= hw) {
      s -= hw;
      address += wrap;
    }
  }
  sums[lid] = sum;
  for (var half = 32u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid < half) { sums[lid] += sums[lid + half]; }
  }
  if (lid == 0u) { partial[group] = sums[0]; }
}
