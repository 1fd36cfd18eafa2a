// Adds the split-K partial sums of a weight gradient into the gradient (parameter gradients
// accumulate): gw[co, ci, tap] += Σ_s partial[s][...]. The tiled kernels store each split in
// the gradient's own layout; the direct kernels store blocks of 4 output channels as vec4s,
// [split][co / 4][(ci / 4)·taps + tap][ci % 4][co % 4] (`blocked` = 1).
struct Params {
  n: u32,          // Cout · Cin · taps
  splits: u32,
  blocked: u32,
  in_channels: u32,
  taps: u32,
  co4: u32,        // blocked layout: output channel blocks (of 4) per split
  entries: u32,    // blocked layout: (input channel block, tap) entries per output block
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> gw: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  var first = i;
  var step = params.n;
  if (params.blocked == 1u) {
    let size = params.in_channels * params.taps;
    let co = i / size;
    let ci = i % size / params.taps;
    let e = ci / 4u * params.taps + i % params.taps;
    first = ((co / 4u * params.entries + e) * 4u + ci % 4u) * 4u + co % 4u;
    step = params.co4 * params.entries * 16u;
  }
  var sum = 0.0;
  for (var s = 0u; s < params.splits; s++) {
    sum += partial[first + s * step];
  }
  gw[i] += sum;
}
