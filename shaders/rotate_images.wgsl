// The four rotations of square images x [N, C, S, S] for rotation prediction (Gidaris et al.
// 2018): out [4N, C, S, S], row r·N + n holding image n turned by r·90° counter-clockwise, as
// torch.rot90(x, r, dims=(2, 3)) (and RotNet's rotate_img): r = 1: out[i][j] = x[j][S−1−i];
// r = 2: x[S−1−i][S−1−j]; r = 3: x[S−1−j][i]. One invocation per output value.
struct Params { images: u32, channels: u32, side: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let index = gid.x + gid.y * nwg.x * 256u;
  let s = params.side;
  let plane = s * s;
  let imageSize = params.channels * plane;
  if (index >= 4u * params.images * imageSize) { return; }
  let row = index / imageSize;
  let r = row / params.images;
  let n = row - r * params.images;
  let within = index - row * imageSize;
  let c = within / plane;
  let i = (within - c * plane) / s;
  let j = within - c * plane - i * s;
  let last = s - 1u;
  var source = vec2u(i, j);
  if (r == 1u) { source = vec2u(j, last - i); }
  if (r == 2u) { source = vec2u(last - i, last - j); }
  if (r == 3u) { source = vec2u(last - j, i); }
  out[index] = x[n * imageSize + c * plane + source.x * s + source.y];
}
