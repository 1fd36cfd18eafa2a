import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import {
  type AttentionProduct,
  attentionProductKernel,
  type MatmulForm,
  softmaxBackwardKernel,
  softmaxForwardKernel,
} from "../gpu/kernels/transformer.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { constant, truncatedNormal } from "./init.ts";
import { Linear, type LinearInit } from "./linear.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, prefixed } from "./module.ts";

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
}

// Outputs per side of one invocation's block, and invocations per workgroup.
const block = 8;
const workgroup = 64;
const up4 = (n: number) => Math.ceil(n / 4) * 4;

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
 * A's rows zero from k to the next multiple of 4.
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
  const grid = Math.ceil((batches * tiles) / workgroup);
  const tensors = [a.tensor, b.tensor, c.tensor];
  const kernel = attentionProductKernel(use, form);
  const output = [c.offset, c.outerStride, c.headStride, c.rowStride];
  if (form === "strided") {
    program.dispatch(kernel, tensors, grid, [
      ...[m, n, k, heads, batches, tilesN, tiles],
      ...[a.offset, a.outerStride, a.headStride, a.rowStride, a.colStride],
      ...[b.offset, b.outerStride, b.headStride, b.rowStride, b.colStride],
      ...output,
    ]);
    return;
  }
  const sizes = { nt: k, nn: n, tn: n }[form];
  if (sizes % 4 !== 0) throw new Error(`Batched matmul ${form}: [${m}, ${k}]·[${k}, ${n}]`);
  const steps = { nt: k / 4, nn: Math.ceil(k / 4), tn: k }[form];
  const mLast = form === "tn" ? Math.ceil(m / 4) - 1 : m - 1;
  const nLast = form === "nt" ? n - 1 : n / 4 - 1;
  program.dispatch(kernel, tensors, grid, [
    ...[m, n, steps, k - 1, mLast, nLast, heads, batches, tilesN, tiles],
    ...vec4Operand(a, form === "tn" ? "row" : "col"),
    ...vec4Operand(b, form === "nt" ? "row" : "col"),
    ...output,
  ]);
}

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
 * is zeroed (as attention's score rows need).
 */
export function softmaxForward(program: Program, x: Tensor, scale: number, cols: number): Tensor {
  if (!(scale > 0)) throw new Error(`Softmax scale must be positive, got ${scale}`);
  const [rows, width] = softmaxRows(x, cols);
  const y = program.temp(x.shape, "softmax output");
  program.dispatch(softmaxForwardKernel, [x, y], Math.ceil(rows / 64), [
    rows,
    cols,
    width,
    f32(scale),
  ]);
  return y;
}

/** Records the softmax input gradient from its output `y`, zero past `cols` as y is. */
export function softmaxBackward(
  program: Program,
  y: Tensor,
  gradY: Tensor,
  scale: number,
  cols: number,
): Tensor {
  const [rows, width] = softmaxRows(y, cols);
  const gradX = program.temp(y.shape, "softmax input gradient");
  program.dispatch(softmaxBackwardKernel, [y, gradY, gradX], Math.ceil(rows / 64), [
    rows,
    cols,
    width,
    f32(scale),
  ]);
  return gradX;
}

/** The sizes of multi-head attention over tokens [N, T, D] with `heads` heads. */
interface AttentionShape {
  readonly n: number;
  readonly t: number;
  readonly d: number;
  readonly heads: number;
  readonly headDim: number;
  /** Row length of the score matrices: T rounded up to a multiple of 4 for vec4 loads. */
  readonly width: number;
  /** "strided" when the head width is not a multiple of 4, else the vec4 kernels. */
  readonly vec4: boolean;
}

function attentionShape(qkv: Tensor, heads: number): AttentionShape {
  if (qkv.shape.length !== 3 || qkv.shape[2] % (3 * heads) !== 0) {
    throw new Error(`Attention with ${heads} heads got qkv [${qkv.shape}]`);
  }
  const [n, t, d3] = qkv.shape;
  const d = d3 / 3;
  const headDim = d / heads;
  return { n, t, d, heads, headDim, width: up4(t), vec4: headDim % 4 === 0 };
}

// q, k and v of every (sample, head) inside the fused projection [N, T, 3, H, dh], as rows
// (token) × columns (channel of the head); `part` is 0, 1 or 2.
function qkvPart(qkv: Tensor, s: AttentionShape, part: number): StridedMatrices {
  return {
    tensor: qkv,
    offset: part * s.d,
    outerStride: s.t * 3 * s.d,
    headStride: s.headDim,
    rowStride: 3 * s.d,
    colStride: 1,
  };
}

// Row-major T×T matrices of attention scores or probabilities [N, H, T, width].
function scoreMatrices(tensor: Tensor, s: AttentionShape): StridedMatrices {
  return {
    tensor,
    offset: 0,
    outerStride: s.heads * s.t * s.width,
    headStride: s.t * s.width,
    rowStride: s.width,
    colStride: 1,
  };
}

// The heads' outputs, interleaved as [N, T, H, dh] (timm's transpose(1, 2).reshape).
function headOutputs(tensor: Tensor, s: AttentionShape): StridedMatrices {
  return {
    tensor,
    offset: 0,
    outerStride: s.t * s.d,
    headStride: s.headDim,
    rowStride: s.d,
    colStride: 1,
  };
}

function transposed(s: StridedMatrices): StridedMatrices {
  return { ...s, rowStride: s.colStride, colStride: s.rowStride };
}

// Records one of attention's products, C = A·B over every (sample, head), with the vec4
// kernel of the operands' layout when the head width allows it.
function product(
  program: Program,
  s: AttentionShape,
  use: AttentionProduct,
  form: Exclude<MatmulForm, "strided">,
  [a, b, c]: StridedMatrices[],
  [m, n, k]: number[],
): void {
  batchedMatmul(program, use, s.vec4 ? form : "strided", a, b, c, {
    m,
    n,
    k,
    outer: s.n,
    heads: s.heads,
  });
}

/** What the backward pass of the attention core needs from its forward pass. */
export interface AttentionSaved {
  readonly qkv: Tensor;
  /** Attention probabilities [N, H, T, T rounded up to a multiple of 4], zero-padded. */
  readonly probs: Tensor;
  readonly heads: number;
}

/**
 * Records the core of multi-head self-attention on the fused projection qkv [N, T, 3·D]
 * (timm's layout: q, k, v, each split into heads): softmax(q·kᵀ/√dh)·v per head, returned as
 * [N, T, D] with the heads interleaved, ready for the output projection.
 */
export function attentionForward(
  program: Program,
  qkv: Tensor,
  heads: number,
): { output: Tensor; saved: AttentionSaved } {
  const s = attentionShape(qkv, heads);
  const { t, headDim: dh } = s;
  const scores = program.temp([s.n, heads, t, s.width], "attention scores");
  const q = qkvPart(qkv, s, 0);
  const k = qkvPart(qkv, s, 1);
  const v = qkvPart(qkv, s, 2);
  product(program, s, "scores", "nt", [q, transposed(k), scoreMatrices(scores, s)], [t, t, dh]);
  const probs = softmaxForward(program, scores, 1 / Math.sqrt(dh), t);
  const output = program.temp([s.n, t, s.d], "attention output");
  product(program, s, "values", "nn", [scoreMatrices(probs, s), v, headOutputs(output, s)], [
    t,
    dh,
    t,
  ]);
  return { output, saved: { qkv, probs, heads } };
}

/** Records the gradient of the fused projection qkv [N, T, 3·D] (overwritten). */
export function attentionBackward(
  program: Program,
  saved: AttentionSaved,
  gradOutput: Tensor,
): Tensor {
  const { qkv, probs, heads } = saved;
  const s = attentionShape(qkv, heads);
  const { t, headDim: dh } = s;
  const q = qkvPart(qkv, s, 0);
  const k = qkvPart(qkv, s, 1);
  const v = qkvPart(qkv, s, 2);
  const p = scoreMatrices(probs, s);
  const gradQkv = program.temp(qkv.shape, "attention qkv gradient");
  const gradO = headOutputs(gradOutput, s);
  const gradProbs = program.temp(probs.shape, "attention probability gradient");
  const gp = scoreMatrices(gradProbs, s);
  product(program, s, "values_backward", "nt", [gradO, transposed(v), gp], [t, t, dh]);
  product(program, s, "values_backward", "tn", [transposed(p), gradO, qkvPart(gradQkv, s, 2)], [
    t,
    dh,
    t,
  ]);
  const gradScores = softmaxBackward(program, probs, gradProbs, 1 / Math.sqrt(dh), t);
  const gs = scoreMatrices(gradScores, s);
  product(program, s, "scores_backward", "nn", [gs, k, qkvPart(gradQkv, s, 0)], [t, dh, t]);
  product(program, s, "scores_backward", "tn", [transposed(gs), q, qkvPart(gradQkv, s, 1)], [
    t,
    dh,
    t,
  ]);
  return gradQkv;
}

/** timm's initialisation of a ViT's linear layers: weights trunc-normal std 0.02, biases 0. */
export const vitLinearInit: LinearInit = { weight: truncatedNormal(0.02), bias: constant(0) };

/**
 * Multi-head self-attention as timm's `Attention`: a fused `qkv` projection (with bias),
 * scaled dot-product attention per head, and the output projection `proj`.
 */
export class Attention implements Layer {
  readonly qkv: Linear;
  readonly proj: Linear;

  constructor(readonly dim: number, readonly heads: number) {
    if (!Number.isInteger(heads) || heads < 1 || dim % heads !== 0) {
      throw new Error(`Attention: ${heads} heads do not divide width ${dim}`);
    }
    this.qkv = new Linear(dim, 3 * dim, vitLinearInit);
    this.proj = new Linear(dim, dim, vitLinearInit);
  }

  entries(): Entry[] {
    return [...prefixed("qkv", this.qkv), ...prefixed("proj", this.proj)];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const qkv = this.qkv.forward(program, input, options);
    const core = attentionForward(program, qkv.output, this.heads);
    const proj = this.proj.forward(program, core.output, { ...options, inputGrad: true });
    return {
      output: proj.output,
      backward: (p, gradOutput) => {
        const gradCore = proj.backward(p, gradOutput)!;
        return qkv.backward(p, attentionBackward(p, core.saved, gradCore));
      },
    };
  }
}
