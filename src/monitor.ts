import type { Program } from "./gpu/gpu.ts";
import { embeddingSpreadKernel } from "./gpu/kernels/embedding.ts";
import type { Tensor } from "./gpu/tensor.ts";
import { l2NormalizeForward } from "./nn/l2_normalize.ts";

/**
 * Records the collapse monitor of a batch of embeddings [M, D]: the mean over dimensions of
 * the per-dimension standard deviation of the L2-normalised rows (as solo-learn's `z_std`).
 * Embeddings spread over the sphere give about 1/√D, collapsed ones 0. Returns the value,
 * [1], kept so the host can read it with the loss.
 */
export function recordSpread(program: Program, embeddings: Tensor): Tensor {
  const { y } = l2NormalizeForward(program, embeddings);
  const spread = program.temp([1], "embedding spread");
  program.dispatch(embeddingSpreadKernel, [y, spread], 1, [y.shape[0], y.shape[1]]);
  program.keep(spread);
  return spread;
}

/**
 * Below this fraction of the healthy 1/√D the embeddings count as collapsed. A collapsed
 * network's spread falls to float32 noise, orders of magnitude below; a network that learns
 * can sit at a few percent of 1/√D for a while (MoCo's queries early on, with a queue of
 * random keys), so the line is drawn well under that.
 */
export const collapsedFraction = 0.01;

/** Whether a spread (from {@link recordSpread}) of D-dimensional embeddings is a collapse. */
export function isCollapsed(spread: number, dimensions: number): boolean {
  return spread * Math.sqrt(dimensions) < collapsedFraction;
}
