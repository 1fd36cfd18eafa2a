// Copies a [rows, cols] matrix into the top-left corner of a zeroed [rows2, cols2] one, so
// that the linear kernels can load whole vec4 rows of any shape.
struct Params { rows: u32, cols: u32, cols2: u32, size2: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.size2) { return; }
  let r = i / params.cols2;
  let c = i % params.cols2;
  var value = 0.0;
  if (r < params.rows && c < params.cols) { value = src[r * params.cols + c]; }
  dst[i] = value;
}
