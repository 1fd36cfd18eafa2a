// The token plumbing of a vision transformer: images into patches, position embeddings, the
// class token, and tokens selected or put back by index (MAE's masking). Each pass runs in its
// activations' precision, f32 or f16; the class token and position embeddings are f32
// parameters either way, and so are their gradients.
import type { Program } from "../gpu/gpu.ts";
import {
  classTokenBackwardFixedKernel,
  classTokenBackwardKernel,
  classTokenForwardKernel,
  patchifyBackwardKernel,
  patchifyForwardKernel,
  posEmbedBackwardKernel,
  posEmbedForwardKernel,
  tokenGatherKernel,
  tokenScatterKernel,
} from "../gpu/kernels/transformer.ts";
import { inPrecision, precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";

function tokensShape(x: Tensor, what: string): [number, number, number] {
  if (x.shape.length !== 3) throw new Error(`${what} expects tokens [N, T, D], got [${x.shape}]`);
  const [n, t, d] = x.shape;
  return [n, t, d];
}

/**
 * Records the patches of images [N, C, H, W]: [N, (H/p)·(W/p), C·p·p], patches row-major
 * over the grid, each flattened as (c, ky, kx) like a convolution weight [D, C, p, p].
 */
export function patchify(program: Program, images: Tensor, patchSize: number): Tensor {
  if (images.shape.length !== 4) {
    throw new Error(`patchify expects [N, C, H, W], got [${images.shape}]`);
  }
  const [n, c, h, w] = images.shape;
  const p = patchSize;
  if (!Number.isInteger(p) || p < 1 || h % p !== 0 || w % p !== 0) {
    throw new Error(`Patch size ${p} does not divide images [${images.shape}]`);
  }
  const precision = precisionOf(images);
  const y = program.temp([n, (h / p) * (w / p), c * p * p], "patches", precision);
  const kernel = inPrecision(patchifyForwardKernel, precision);
  program.dispatch(kernel, [images, y], Math.ceil(y.size / 256), [
    y.size,
    c,
    h,
    w,
    p,
  ]);
  return y;
}

/** Records the image gradient [N, C, H, W] from the patches' gradient (overwritten). */
export function patchifyBackward(
  program: Program,
  gradPatches: Tensor,
  imageShape: readonly number[],
  patchSize: number,
): Tensor {
  const [, c, h, w] = imageShape;
  const gradX = program.temp(imageShape, "image gradient");
  program.dispatch(patchifyBackwardKernel, [gradPatches, gradX], Math.ceil(gradX.size / 256), [
    gradX.size,
    c,
    h,
    w,
    patchSize,
  ]);
  return gradX;
}

function checkPositions(x: Tensor, pos: Tensor, first: number): [number, number, number] {
  const [n, t, d] = tokensShape(x, "Position embedding");
  if (pos.size % d !== 0 || pos.size / d < first + t) {
    throw new Error(`Position embeddings [${pos.shape}] lack rows ${first}…${first + t - 1}`);
  }
  return [n, t, d];
}

/**
 * Records y = x + pos[first : first + T] for tokens x [N, T, D] and position embeddings
 * pos [1, R, D], broadcast over the batch.
 */
export function addPositions(program: Program, x: Tensor, pos: Tensor, first: number): Tensor {
  const [, t, d] = checkPositions(x, pos, first);
  const precision = precisionOf(x);
  const y = program.temp(x.shape, "tokens with positions", precision);
  const kernel = inPrecision(posEmbedForwardKernel, precision);
  program.dispatch(kernel, [x, pos, y], Math.ceil(x.size / 256), [
    x.size,
    t * d,
    first * d,
  ]);
  return y;
}

/**
 * Records gpos[first : first + T] += Σ_n gy[n] (parameter gradients accumulate). The
 * tokens' gradient is gy itself.
 */
export function addPositionsBackward(
  program: Program,
  gradY: Tensor,
  gradPos: Tensor,
  first: number,
): void {
  const [n, t, d] = checkPositions(gradY, gradPos, first);
  const kernel = inPrecision(posEmbedBackwardKernel, precisionOf(gradY));
  program.dispatch(kernel, [gradY, gradPos], Math.ceil((t * d) / 256), [
    t * d,
    n,
    first * d,
  ]);
}

/**
 * Records [cls + pos[0]; x] for tokens x [N, P, D]: y [N, 1 + P, D]. `pos` is the position
 * embeddings [1, R, D], of which row 0 is the class token's.
 */
export function prependClassToken(program: Program, x: Tensor, cls: Tensor, pos: Tensor): Tensor {
  const [n, p, d] = tokensShape(x, "Class token");
  if (cls.size !== d || pos.size < d) {
    throw new Error(
      `Class token [${cls.shape}] and positions [${pos.shape}] for tokens [${x.shape}]`,
    );
  }
  const precision = precisionOf(x);
  const y = program.temp([n, p + 1, d], "tokens with class token", precision);
  const kernel = inPrecision(classTokenForwardKernel, precision);
  program.dispatch(kernel, [x, cls, pos, y], Math.ceil(y.size / 256), [
    y.size,
    p + 1,
    d,
  ]);
  return y;
}

/**
 * Records the backward pass of {@link prependClassToken}: returns the tokens' gradient
 * [N, P, D] (overwritten) and adds the batch sum of the class token's gradient into
 * `gradCls` and, when the positions are learned, into row 0 of `gradPos`.
 */
export function prependClassTokenBackward(
  program: Program,
  gradY: Tensor,
  gradCls: Tensor,
  gradPos: Tensor | undefined,
): Tensor {
  const [n, t, d] = tokensShape(gradY, "Class token backward");
  const precision = precisionOf(gradY);
  const gradX = program.temp([n, t - 1, d], "tokens gradient", precision);
  const grid = Math.ceil((t * d) / 256);
  const params = [t * d, n, d];
  if (gradPos) {
    const kernel = inPrecision(classTokenBackwardKernel, precision);
    program.dispatch(kernel, [gradY, gradX, gradCls, gradPos], grid, params);
  } else {
    const kernel = inPrecision(classTokenBackwardFixedKernel, precision);
    program.dispatch(kernel, [gradY, gradX, gradCls], grid, params);
  }
  return gradX;
}

function checkIndex(x: Tensor, index: Tensor): [number, number] {
  if (index.dtype !== "u32" || index.shape.length !== 2 || index.shape[0] !== x.shape[0]) {
    throw new Error(`Token index must be u32 [N, K], got ${index.dtype} [${index.shape}]`);
  }
  return [index.shape[0], index.shape[1]];
}

/** Records y[n, j] = x[n, index[n, j]] for tokens x [N, T, D] and u32 indices [N, K]. */
export function gatherTokens(program: Program, x: Tensor, index: Tensor): Tensor {
  const [, t, d] = tokensShape(x, "Token gather");
  const [n, k] = checkIndex(x, index);
  const precision = precisionOf(x);
  const y = program.temp([n, k, d], "gathered tokens", precision);
  const kernel = inPrecision(tokenGatherKernel, precision);
  program.dispatch(kernel, [x, index, y], Math.ceil(y.size / 256), [y.size, k, t, d]);
  return y;
}

/**
 * Records y [N, T, D] with y[n, index[n, j]] = x[n, j] and zeros elsewhere, for tokens
 * x [N, K, D]: the gradient of {@link gatherTokens}. The indices of each row must be distinct.
 */
export function scatterTokens(program: Program, x: Tensor, index: Tensor, tokens: number): Tensor {
  const [, k, d] = tokensShape(x, "Token scatter");
  const [n] = checkIndex(x, index);
  if (index.shape[1] !== k) {
    throw new Error(`Token scatter: index [${index.shape}], tokens [${x.shape}]`);
  }
  const precision = precisionOf(x);
  const y = program.temp([n, tokens, d], "scattered tokens", precision);
  program.clear(y);
  program.dispatch(
    inPrecision(tokenScatterKernel, precision),
    [x, index, y],
    Math.ceil(x.size / 256),
    [
      x.size,
      k,
      tokens,
      d,
    ],
  );
  return y;
}

/**
 * Fixed 2-D sine-cosine position embeddings [1 + grid², dim] as MAE's
 * `get_2d_sincos_pos_embed(dim, grid, cls_token=True)`: a zero row for the class token, then
 * per patch (row-major) the 1-D embeddings of its column and of its row, each half sines and
 * half cosines of position·10000^(−i/(dim/4)). `dim` must be a multiple of 4.
 */
export function sincosPositions(dim: number, grid: number): Float32Array {
  if (dim % 4 !== 0) {
    throw new Error(`Sine-cosine positions need a width divisible by 4, got ${dim}`);
  }
  const quarter = dim / 4;
  const out = new Float32Array((1 + grid * grid) * dim);
  for (let y = 0; y < grid; y++) {
    for (let x = 0; x < grid; x++) {
      const row = (1 + y * grid + x) * dim;
      // MAE's grid comes from meshgrid(w, h): its first half embeds the column.
      for (const [half, position] of [[0, x], [1, y]]) {
        const base = row + half * 2 * quarter;
        for (let i = 0; i < quarter; i++) {
          const angle = position / 10000 ** (i / quarter);
          out[base + i] = Math.sin(angle);
          out[base + quarter + i] = Math.cos(angle);
        }
      }
    }
  }
  return out;
}
