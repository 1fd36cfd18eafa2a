import type { Program } from "../gpu/gpu.ts";
import { gatherRowsKernel } from "../gpu/kernels/embedding.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * Records out[i] = x[index[i]] over the first dimension of x (any shape), for a u32 `index`
 * of N row numbers below x's first dimension (not checked on the GPU: the caller makes the
 * index). Returns out, shaped like x with N rows. No gradient: it permutes inputs that get
 * none (MoCo's key batch).
 */
export function gatherRows(program: Program, index: Tensor, x: Tensor): Tensor {
  if (index.dtype !== "u32" || index.shape.length !== 1) {
    throw new Error(`Row gather needs a u32 index [N], got ${index.dtype} [${index.shape}]`);
  }
  const rows = index.size;
  const cols = x.size / x.shape[0];
  const out = program.temp([rows, ...x.shape.slice(1)], "gathered rows");
  program.dispatch(gatherRowsKernel, [index, x, out], Math.ceil((rows * cols) / 256), [
    rows,
    cols,
  ]);
  return out;
}
