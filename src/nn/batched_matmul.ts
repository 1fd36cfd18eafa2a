import type { Program } from "../gpu/gpu.ts";
import {
  type AttentionProduct,
  attentionProductKernel,
  type MatmulForm,
} from "../gpu/kernels/transformer.ts";
import { f32, inPrecision, precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * A batch of matrices inside a tensor, indexed by (outer, head): element (i, j) lies at
 * `offset + outer·outerStride + head·headStride + i·rowStride + j·colStride`.
 */
export interface StridedMatrices {
  readonly tensor: Tensor;
  readonly offset: number;
  readonly outerStride: number;
  readonly headStride: number;
  readonly rowStride: number;
  readonly colStride: number;
}

/** The sizes of a batched product C = A·B: A is m×k, B k×n, over outer × heads matrices. */
export interface BatchedMatmulShape {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly outer: number;
  readonly heads: number;
  /** A factor on C, applied in f32 before C is rounded to its type: 1 if left out. */
  readonly scale?: number;
}

// Outputs per side of one invocation's block, and invocations per workgroup.
const block = 8;
const workgroup = 64;
/** n rounded up to a multiple of 4. */
export const up4 = (n: number): number => Math.ceil(n / 4) * 4;

function checkBounds(s: StridedMatrices, rows: number, cols: number, shape: BatchedMatmulShape) {
  const last = s.offset + (shape.outer - 1) * s.outerStride + (shape.heads - 1) * s.headStride +
    (rows - 1) * s.rowStride + (cols - 1) * s.colStride;
  if (last >= s.tensor.size) {
    throw new Error(
      `Batched matmul: ${rows}×${cols} matrices reach element ${last} of tensor [${s.tensor.shape}]`,
    );
  }
}

// The vec4 kernels' view of an operand: base offsets and the stride between lines, in vec4s.
function vec4Operand(s: StridedMatrices, contiguous: "row" | "col"): number[] {
  const line = contiguous === "col" ? s.rowStride : s.colStride;
  const unit = contiguous === "col" ? s.colStride : s.rowStride;
  const strides = [s.offset, s.outerStride, s.headStride, line];
  if (unit !== 1 || strides.some((v) => v % 4 !== 0)) {
    throw new Error(`Batched matmul: operand strides [${strides}] are not whole vec4s`);
  }
  return strides.map((v) => v / 4);
}

/**
 * Records C = A·B for every (outer, head) pair of strided matrices; C must be row-major
 * (column stride 1) and is overwritten. A transposed operand is the same memory with its
 * row and column strides swapped. `form` "strided" takes any strides; the vec4 forms need
 * A and B contiguous along (k, k) for "nt", (k, j) for "nn", (i, j) for "tn", with offsets
 * and strides multiples of 4, k a multiple of 4 for "nt", n for "nn" and "tn", and for "nn"
 * A's rows zero from k to the next multiple of 4. A, B and C are of one precision, f32 or f16
 * (the products summed in f32, times `shape.scale` if given).
 */
export function batchedMatmul(
  program: Program,
  use: AttentionProduct,
  form: MatmulForm,
  a: StridedMatrices,
  b: StridedMatrices,
  c: StridedMatrices,
  shape: BatchedMatmulShape,
): void {
  const { m, n, k, outer, heads } = shape;
  if (c.colStride !== 1) throw new Error("Batched matmul: the output must be row-major");
  checkBounds(a, form === "tn" ? up4(m) : m, form === "nn" ? up4(k) : k, shape);
  checkBounds(b, k, n, shape);
  checkBounds(c, m, n, shape);
  const tilesN = Math.ceil(n / block);
  const tiles = Math.ceil(m / block) * tilesN;
  const batches = outer * heads;
  const flops = 2 * batches * m * n * k;
  const grid = Math.ceil((batches * tiles) / workgroup);
  const tensors = [a.tensor, b.tensor, c.tensor];
  const kernel = inPrecision(attentionProductKernel(use, form), precisionOf(...tensors));
  const output = [c.offset, c.outerStride, c.headStride, c.rowStride, f32(shape.scale ?? 1)];
  if (form === "strided") {
    program.dispatch(kernel, tensors, grid, [
      ...[m, n, k, heads, batches, tilesN, tiles],
      ...[a.offset, a.outerStride, a.headStride, a.rowStride, a.colStride],
      ...[b.offset, b.outerStride, b.headStride, b.rowStride, b.colStride],
      ...output,
    ], flops);
    return;
  }
  const wholeVectors = { nt: k, nn: n, tn: n }[form];
  if (wholeVectors % 4 !== 0) {
    throw new Error(`Batched matmul ${form}: [${m}, ${k}]·[${k}, ${n}] is not in whole vec4s`);
  }
  const steps = { nt: k / 4, nn: Math.ceil(k / 4), tn: k }[form];
  const mLast = form === "tn" ? Math.ceil(m / 4) - 1 : m - 1;
  const nLast = form === "nt" ? n - 1 : n / 4 - 1;
  program.dispatch(kernel, tensors, grid, [
    ...[m, n, steps, k - 1, mLast, nLast, heads, batches, tilesN, tiles],
    ...vec4Operand(a, form === "tn" ? "row" : "col"),
    ...vec4Operand(b, form === "nt" ? "row" : "col"),
    ...output,
  ], flops);
}
