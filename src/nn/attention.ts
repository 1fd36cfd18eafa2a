import type { Program } from "../gpu/gpu.ts";
import type { AttentionProduct, MatmulForm } from "../gpu/kernels/transformer.ts";
import { precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { batchedMatmul, type StridedMatrices, up4 } from "./batched_matmul.ts";
import { constant, truncatedNormal } from "./init.ts";
import { Linear, type LinearInit } from "./linear.ts";
import {
  type AttentionMask,
  type Entry,
  type Forward,
  type ForwardOptions,
  type Layer,
  prefixed,
} from "./module.ts";
import { softmaxBackward, softmaxForward, softmaxMaskedForward } from "./softmax.ts";

/** The sizes of multi-head attention over tokens [N, T, D] with `heads` heads. */
interface AttentionShape {
  readonly n: number;
  readonly t: number;
  readonly d: number;
  readonly heads: number;
  readonly headDim: number;
  /** Row length of the score matrices: T rounded up to a multiple of 4 for vec4 loads. */
  readonly width: number;
  /** Whether the head width is a multiple of 4, so that the vec4 kernels can run. */
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

// Records one of attention's products, C = scale·A·B over every (sample, head), with the vec4
// kernel of the operands' layout when the head width allows it.
function product(
  program: Program,
  s: AttentionShape,
  use: AttentionProduct,
  form: Exclude<MatmulForm, "strided">,
  [a, b, c]: StridedMatrices[],
  [m, n, k]: number[],
  scale = 1,
): void {
  batchedMatmul(program, use, s.vec4 ? form : "strided", a, b, c, {
    m,
    n,
    k,
    outer: s.n,
    heads: s.heads,
    scale,
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
 * [N, T, D] with the heads interleaved, ready for the output projection. With a `mask`, the
 * keys it excludes get no attention. In qkv's precision, f32 or (without a mask) f16: scores
 * and probabilities are stored in it (f16 scores already scaled), their sums are f32.
 */
export function attentionForward(
  program: Program,
  qkv: Tensor,
  heads: number,
  mask?: AttentionMask,
): { output: Tensor; saved: AttentionSaved } {
  const s = attentionShape(qkv, heads);
  const { t, headDim: dh } = s;
  const precision = precisionOf(qkv);
  const scores = program.temp([s.n, heads, t, s.width], "attention scores", precision);
  const q = qkvPart(qkv, s, 0);
  const k = qkvPart(qkv, s, 1);
  const v = qkvPart(qkv, s, 2);
  // f16 scores are scaled by 1/√dh in f32 before they are rounded, as PyTorch scales q before
  // its product: unscaled, q·k would overflow f16 at √dh times smaller logits. f32 scores are
  // scaled by the softmax, as they were before f16 was (the same bits).
  const scale = 1 / Math.sqrt(dh);
  const [scoreScale, softmaxScale] = precision === "f16" ? [scale, 1] : [1, scale];
  const scoreProduct = [q, transposed(k), scoreMatrices(scores, s)];
  product(program, s, "scores", "nt", scoreProduct, [t, t, dh], scoreScale);
  const probs = mask
    ? softmaxMaskedForward(program, scores, softmaxScale, mask)
    : softmaxForward(program, scores, softmaxScale, t);
  const output = program.temp([s.n, t, s.d], "attention output", precision);
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
  const precision = precisionOf(qkv, gradOutput);
  const gradQkv = program.temp(qkv.shape, "attention qkv gradient", precision);
  const gradO = headOutputs(gradOutput, s);
  const gradProbs = program.temp(probs.shape, "attention probability gradient", precision);
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
    const core = attentionForward(program, qkv.output, this.heads, options.attentionMask);
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
