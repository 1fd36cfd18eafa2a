import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { crossEntropyRowsKernel, lossMeanKernel } from "../gpu/kernels/loss.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { LossOutput } from "./nt_xent.ts";

/**
 * Records the mean softmax cross-entropy of `logits` [N, K] against class indices `labels`
 * (i32 [N]), forward and backward together (the loss's gradient seed is 1), as PyTorch's
 * `F.cross_entropy` with mean reduction. A label outside [0, K) makes the loss NaN.
 *
 * @example
 * ```ts ignore
 * const { loss, gradInput } = crossEntropy(program, logits, labels);
 * ```
 */
export function crossEntropy(program: Program, logits: Tensor, labels: Tensor): LossOutput {
  if (logits.shape.length !== 2 || logits.shape[0] < 1 || logits.shape[1] < 1) {
    throw new Error(`Cross-entropy needs logits [N, K], got [${logits.shape}]`);
  }
  const [rows, classes] = logits.shape;
  if (labels.dtype !== "i32" || labels.size !== rows) {
    throw new Error(
      `Cross-entropy needs ${rows} i32 labels, got ${labels.dtype} [${labels.shape}]`,
    );
  }
  const rowLoss = program.temp([rows], "cross-entropy row losses");
  const loss = program.temp([1], "cross-entropy loss");
  const gradInput = program.temp([rows, classes], "cross-entropy input gradient");
  program.dispatch(
    crossEntropyRowsKernel,
    [logits, labels, rowLoss, gradInput],
    rows,
    [rows, classes, f32(1 / rows)],
  );
  program.dispatch(lossMeanKernel, [rowLoss, loss], 1, [rows, f32(1 / rows)]);
  return { loss, gradInput };
}
