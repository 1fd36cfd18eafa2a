import type { Program } from "../gpu/gpu.ts";
import { sequencePoolBackwardKernel, sequencePoolForwardKernel } from "../gpu/kernels/text.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * How a text encoder turns its tokens' features into one vector: their mean over the tokens
 * that are not padding, the first token's ([CLS]), or the last non-padding token's (CLIP's
 * end of text).
 */
export type Pooling = "mean" | "first" | "last";
export const poolings: readonly Pooling[] = ["mean", "first", "last"];
const modes: Record<Pooling, number> = { mean: 0, first: 1, last: 2 };

function shapes(x: Tensor, tokens: Tensor): [number, number, number] {
  if (x.shape.length !== 3 || tokens.dtype !== "u32" || tokens.size !== x.shape[0] * x.shape[1]) {
    throw new Error(`Sequence pooling of [${x.shape}] by ${tokens.dtype} tokens [${tokens.shape}]`);
  }
  const [n, t, d] = x.shape;
  return [n, t, d];
}

/**
 * Records the pooled features y [N, D] of token features x [N, T, D], padding being the
 * tokens (u32 [N, T]) equal to `pad`; returns y and how to record the input gradient.
 */
export function sequencePool(
  program: Program,
  x: Tensor,
  tokens: Tensor,
  pad: number,
  pooling: Pooling,
): { output: Tensor; backward(program: Program, gradOutput: Tensor): Tensor } {
  const [n, t, d] = shapes(x, tokens);
  const params = [n, t, d, pad, modes[pooling]];
  const output = program.temp([n, d], "pooled features");
  program.dispatch(
    sequencePoolForwardKernel,
    [x, tokens, output],
    Math.ceil((n * d) / 256),
    params,
  );
  return {
    output,
    backward(p, gradOutput) {
      const gradX = p.temp(x.shape, "pooled features' input gradient");
      p.dispatch(
        sequencePoolBackwardKernel,
        [gradOutput, tokens, gradX],
        Math.ceil((n * t) / 64),
        params,
      );
      return gradX;
    },
  };
}
