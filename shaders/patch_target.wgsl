// What masked_mse_forward.wgsl and masked_mse_backward.wgsl share: their parameters, their
// inputs — the images [N, 3, S, S], the prediction [N, 1 + L, P] (the decoder's output, whose
// row 0 is the class token's, no patch) and the mask [N, L] (1 for masked patches) — and MAE's
// reconstruction target: the pixels of patch l of image n read straight from the images in
// MAE's patchify order, element i = (ky·p + kx)·3 + c, and, with `normalize`, normalised per
// patch as norm_pix_loss does: (x − mean) / √(var + ε), var unbiased (torch.var's default).
// `scale` is 1 / (the number of masked patches): the loss is a mean over them.
struct Params {
  patches: u32,
  perImage: u32,
  grid: u32,
  patchSize: u32,
  side: u32,
  normalize: u32,
  eps: f32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> images: array<f32>;
@group(0) @binding(2) var<storage, read> pred: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;

fn patchPixel(n: u32, l: u32, i: u32) -> f32 {
  let p = params.patchSize;
  let c = i % 3u;
  let kx = (i / 3u) % p;
  let ky = i / (3u * p);
  let y = (l / params.grid) * p + ky;
  let x = (l % params.grid) * p + kx;
  return images[((n * 3u + c) * params.side + y) * params.side + x];
}

// (mean, √(var + ε)) of the patch's pixels, or (0, 1) when targets are not normalised.
fn patchStats(n: u32, l: u32) -> vec2f {
  if (params.normalize == 0u) { return vec2f(0.0, 1.0); }
  let size = 3u * params.patchSize * params.patchSize;
  var sum = 0.0;
  for (var i = 0u; i < size; i++) { sum += patchPixel(n, l, i); }
  let mean = sum / f32(size);
  var squares = 0.0;
  for (var i = 0u; i < size; i++) {
    let v = patchPixel(n, l, i) - mean;
    squares += v * v;
  }
  return vec2f(mean, sqrt(squares / f32(size - 1u) + params.eps));
}
