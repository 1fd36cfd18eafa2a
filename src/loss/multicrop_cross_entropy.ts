import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { lossMeanKernel } from "../gpu/kernels/loss.ts";
import { multicropCrossEntropyRowsKernel } from "../gpu/kernels/multicrop.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { LossOutput } from "./nt_xent.ts";

/** The shape of a multi-crop loss: crops per image and how many of them give targets. */
export interface MulticropLossOptions {
  /** Crops of every image in the logits, V ≥ 2. */
  readonly crops: number;
  /** The first G crops give targets (DINO's and SwAV's two global crops), 1 ≤ G ≤ V. */
  readonly targetCrops: number;
  /** τ, by which the logits are divided before the softmax. */
  readonly temperature: number;
}

/**
 * Records the cross-entropy that DINO (Caron et al. 2021) and SwAV's swapped prediction
 * (Caron et al. 2020) share, forward and backward together: soft targets q [G·N, K] of the
 * first G crops of N images against the softmax of the logits s / τ [V·N, K] of all V
 * crops (crop v's row of image r at v·N + r), every pair of a target crop and another crop,
 * the mean over the G·(V − 1) pairs of each pair's mean over images of
 * −Σ_k q[r,k]·log_softmax(s/τ)[r,k] — DINOLoss.forward and SwAV's loss in their
 * repositories. The gradient is for the logits only (targets come from a teacher or from
 * Sinkhorn–Knopp, with no gradient).
 */
export function multicropCrossEntropy(
  program: Program,
  logits: Tensor,
  targets: Tensor,
  { crops, targetCrops, temperature }: MulticropLossOptions,
): LossOutput {
  const [rows, classes] = logits.shape;
  const n = rows / crops;
  if (
    logits.shape.length !== 2 || !Number.isInteger(n) || crops < 2 || targetCrops < 1 ||
    targetCrops > crops || targets.shape.join() !== [targetCrops * n, classes].join()
  ) {
    throw new Error(
      `Multi-crop cross-entropy of ${crops} crops, ${targetCrops} giving targets: logits ` +
        `[${logits.shape}], targets [${targets.shape}]`,
    );
  }
  const scale = 1 / (n * targetCrops * (crops - 1));
  const rowLoss = program.temp([rows], "multi-crop row losses");
  const gradInput = program.temp([rows, classes], "multi-crop logit gradient");
  program.dispatch(
    multicropCrossEntropyRowsKernel,
    [logits, targets, rowLoss, gradInput],
    rows,
    [n, crops, targetCrops, classes, f32(1 / temperature), f32(scale)],
  );
  const loss = program.temp([1], "multi-crop loss");
  program.dispatch(lossMeanKernel, [rowLoss, loss], 1, [rows, f32(scale)]);
  return { loss, gradInput };
}
