// Global average pooling's input gradient: gx[n, c, h, w] = gy[n, c] / (H·W), in either
// precision (see inPrecision).
alias act = f32;
struct Params { size: u32, hw: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gy: array<act>;
@group(0) @binding(2) var<storage, read_write> gx: array<act>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size) { return; }
  gx[i] = act(f32(gy[i / params.hw]) / f32(params.hw));
}
