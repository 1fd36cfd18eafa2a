import type { Program } from "../gpu/gpu.ts";
import { f32, inPrecision, precisionOf } from "../gpu/kernel.ts";
import { softmaxMaskedForwardKernel } from "../gpu/kernels/text.ts";
import { softmaxBackwardKernel, softmaxForwardKernel } from "../gpu/kernels/transformer.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { up4 } from "./batched_matmul.ts";
import type { AttentionMask } from "./module.ts";

// The rows and their width of a softmax input [..., width]; the kernels read vec4s.
function softmaxRows(x: Tensor, cols: number): [number, number] {
  const width = x.shape[x.shape.length - 1];
  if (cols < 1 || width !== up4(cols)) {
    throw new Error(`Softmax over ${cols} values needs rows of ${up4(cols)}, got [${x.shape}]`);
  }
  return [x.size / width, width];
}

/**
 * Records y = softmax(scale·x) (scale > 0) over the first `cols` values of each row of x
 * [..., width], width being cols rounded up to a multiple of 4; the padding of each row of y
 * is zeroed (as attention's score rows need). In x's precision (computed in f32).
 */
export function softmaxForward(program: Program, x: Tensor, scale: number, cols: number): Tensor {
  if (!(scale > 0)) throw new Error(`Softmax scale must be positive, got ${scale}`);
  const [rows, width] = softmaxRows(x, cols);
  const precision = precisionOf(x);
  const y = program.temp(x.shape, "softmax output", precision);
  program.dispatch(inPrecision(softmaxForwardKernel, precision), [x, y], Math.ceil(rows / 64), [
    rows,
    cols,
    width,
    f32(scale),
  ]);
  return y;
}

/**
 * Records {@link softmaxForward} of attention scores x [N, H, T, width] with the keys that
 * `mask` excludes (padding; later tokens when causal) given zero probability; the ordinary
 * {@link softmaxBackward} then gives them zero gradient.
 */
export function softmaxMaskedForward(
  program: Program,
  x: Tensor,
  scale: number,
  mask: AttentionMask,
): Tensor {
  const [n, heads, t] = x.shape;
  const [rows, width] = softmaxRows(x, t);
  if (x.shape.length !== 4 || mask.tokens.dtype !== "u32" || mask.tokens.size !== n * t) {
    throw new Error(`Masked softmax of scores [${x.shape}] by tokens [${mask.tokens.shape}]`);
  }
  // Only the text encoder masks attention, and it trains in f32.
  if (x.dtype !== "f32") throw new Error(`Masked softmax of ${x.dtype} scores: f32 only`);
  const y = program.temp(x.shape, "masked softmax output");
  program.dispatch(softmaxMaskedForwardKernel, [x, mask.tokens, y], Math.ceil(rows / 64), [
    rows,
    t,
    width,
    f32(scale),
    heads,
    mask.pad,
    mask.causal ? 1 : 0,
  ]);
  return y;
}

/**
 * Records the softmax input gradient from its output `y`, zero past `cols` as y is, in the
 * precision of y and gy.
 */
export function softmaxBackward(
  program: Program,
  y: Tensor,
  gradY: Tensor,
  scale: number,
  cols: number,
): Tensor {
  const [rows, width] = softmaxRows(y, cols);
  const precision = precisionOf(y, gradY);
  const gradX = program.temp(y.shape, "softmax input gradient", precision);
  const kernel = inPrecision(softmaxBackwardKernel, precision);
  program.dispatch(kernel, [y, gradY, gradX], Math.ceil(rows / 64), [
    rows,
    cols,
    width,
    f32(scale),
  ]);
  return gradX;
}
