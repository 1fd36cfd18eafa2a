// out[i] = x[index[i]] for rows of `cols` values: a permutation of a batch, as MoCo's
// emulated shuffle-BN applies to the key encoder's input and undoes on its output.
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.rows * params.cols) { return; }
  let row = i / params.cols;
  out[i] = x[index[row] * params.cols + (i - row * params.cols)];
}
