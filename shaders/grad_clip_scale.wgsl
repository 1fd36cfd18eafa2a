// Gradient clipping per parameter, stage 3 of 3: every gradient value times its segment's
// factor from stage 2, over the flat block; padding is skipped (see `chunks`).
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
// Per 64-element chunk of the block: the number of its elements that belong to a parameter
// (bits 0–6; the rest is alignment padding) and the parameter's segment index (bits 8–31).
@group(0) @binding(1) var<storage, read> chunks: array<u32>;
@group(0) @binding(2) var<storage, read> factors: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  let chunk = chunks[i >> 6u];
  if ((i & 63u) >= (chunk & 127u)) { return; }
  grad[i] = grad[i] * factors[chunk >> 8u];
}
