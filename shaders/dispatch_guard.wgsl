// The grids of a guarded run of dispatches (Program.guard), where they read them from: each as
// recorded while the flag is 0, else zeros, so that they run no workgroups. One invocation per
// u32 (x, y and z of each grid).
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> flag: array<u32>;
@group(0) @binding(2) var<storage, read> grids: array<u32>;
@group(0) @binding(3) var<storage, read_write> chosen: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= params.n) { return; }
  chosen[i] = select(grids[i], 0u, flag[0] != 0u);
}
