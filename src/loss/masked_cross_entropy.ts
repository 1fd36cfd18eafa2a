import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { lossMeanKernel } from "../gpu/kernels/loss.ts";
import { maskedCrossEntropyRowsKernel } from "../gpu/kernels/text.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { LossOutput } from "./nt_xent.ts";

/**
 * Records the softmax cross-entropy of the rows of `logits` [R, K] whose target (i32 [R])
 * is not −1, averaged over those rows, forward and backward together: PyTorch's
 * `F.cross_entropy(logits, targets, ignore_index=-1)`, masked language modelling's loss on
 * the chosen tokens. Ignored rows get zero gradient; a target ≥ K makes the loss NaN.
 */
export function maskedCrossEntropy(program: Program, logits: Tensor, targets: Tensor): LossOutput {
  if (logits.shape.length !== 2) throw new Error(`Masked cross-entropy of [${logits.shape}]`);
  const [rows, classes] = logits.shape;
  if (targets.dtype !== "i32" || targets.size !== rows) {
    throw new Error(`Masked cross-entropy needs ${rows} i32 targets, got [${targets.shape}]`);
  }
  const rowLoss = program.temp([rows], "masked cross-entropy row losses");
  const loss = program.temp([1], "masked cross-entropy loss");
  const gradInput = program.temp([rows, classes], "masked cross-entropy input gradient");
  program.dispatch(
    maskedCrossEntropyRowsKernel,
    [logits, targets, rowLoss, gradInput],
    rows,
    [rows, classes],
  );
  // Each row's loss is already divided by the number of chosen rows.
  program.dispatch(lossMeanKernel, [rowLoss, loss], 1, [rows, f32(1)]);
  return { loss, gradInput };
}
