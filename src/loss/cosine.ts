import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { cosineLossRowsKernel, lossMeanKernel } from "../gpu/kernels/loss.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { LossOutput } from "./nt_xent.ts";

/**
 * Records BYOL's regression loss (Grill et al. 2020) between unit predictions p̂ [N, D] and
 * unit targets ẑ [N, D], forward and backward together: `scale` · Σᵢ (2 − 2·p̂ᵢ·ẑᵢ), with
 * scale 1/N for the mean. The gradient is for the predictions only (the targets come from
 * the target network, which is not trained by gradient).
 */
export function normalizedRegression(
  program: Program,
  predictions: Tensor,
  targets: Tensor,
  scale: number,
): LossOutput {
  if (predictions.shape.length !== 2 || predictions.shape.join() !== targets.shape.join()) {
    throw new Error(
      `BYOL's loss needs predictions and targets of one shape [N, D], got ` +
        `[${predictions.shape}] and [${targets.shape}]`,
    );
  }
  const [n, d] = predictions.shape;
  const rowLoss = program.temp([n], "regression row losses");
  const gradInput = program.temp([n, d], "regression prediction gradient");
  program.dispatch(
    cosineLossRowsKernel,
    [predictions, targets, rowLoss, gradInput],
    Math.ceil(n / 64),
    [n, d, f32(scale)],
  );
  const loss = program.temp([1], "regression loss");
  program.dispatch(lossMeanKernel, [rowLoss, loss], 1, [n, f32(scale)]);
  return { loss, gradInput };
}
