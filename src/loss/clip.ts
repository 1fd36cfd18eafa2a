import type { Program } from "../gpu/gpu.ts";
import {
  clipLossBackwardKernel,
  clipLossLogsumexpKernel,
  clipLossReduceKernel,
} from "../gpu/kernels/text.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { linearBackwardInput, linearBackwardWeight, linearForward } from "../nn/linear.ts";
import type { Parameter } from "../nn/module.ts";

/** CLIP's logit scale at initialisation: ln(1/0.07), a temperature of 0.07. */
export const clipInitialLogitScale: number = Math.log(1 / 0.07);

/**
 * Records CLIP's symmetric contrastive loss (Radford et al. 2021) on unit image and text
 * embeddings [N, E] of N pairs, forward and backward together: logits scale·I·Tᵀ with
 * scale = min(exp(s), 100) for the learnable `logitScale` s ([1]), cross-entropy of each
 * image against the texts and of each text against the images, each with its own pair as
 * the target, averaged over both. Returns the loss [1] and the embeddings' gradients
 * (overwritten); s's gradient adds to its own (zero while the scale is clamped at 100).
 */
export function clipLoss(
  program: Program,
  images: Tensor,
  texts: Tensor,
  logitScale: Parameter,
): { loss: Tensor; gradImages: Tensor; gradTexts: Tensor } {
  if (images.shape.length !== 2 || texts.shape.join() !== images.shape.join()) {
    throw new Error(`CLIP's loss of image [${images.shape}] and text [${texts.shape}] embeddings`);
  }
  const [n] = images.shape;
  const similarity = linearForward(program, images, texts, null);
  const scale = logitScale.value;
  const lse = program.temp([2 * n], "CLIP logsumexps");
  program.dispatch(clipLossLogsumexpKernel, [similarity, scale, lse], 2 * n, [n]);
  const gradSimilarity = program.temp([n, n], "CLIP similarity gradient");
  const scaleTerms = program.temp([n, n], "CLIP scale terms");
  program.dispatch(
    clipLossBackwardKernel,
    [similarity, scale, lse, gradSimilarity, scaleTerms],
    Math.ceil((n * n) / 256),
    [n],
  );
  const loss = program.temp([1], "CLIP loss");
  program.dispatch(
    clipLossReduceKernel,
    [similarity, scale, lse, scaleTerms, loss, logitScale.grad],
    1,
    [n],
  );
  // dI = G·T; dT = Gᵀ·I, a weight gradient of the product, into zeros.
  const gradImages = linearBackwardInput(program, gradSimilarity, texts);
  const gradTexts = program.temp(texts.shape, "CLIP text embedding gradient");
  program.clear(gradTexts);
  linearBackwardWeight(program, images, gradSimilarity, gradTexts, null);
  return { loss, gradImages, gradTexts };
}
