import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { sinkhornColumnsKernel, sinkhornRowsKernel } from "../gpu/kernels/multicrop.ts";
import type { StepValues } from "../gpu/step_values.ts";
import type { Tensor } from "../gpu/tensor.ts";

/** Sinkhorn–Knopp's settings (SwAV's: 3 iterations, ε = 0.05). */
export interface SinkhornOptions {
  readonly iterations: number;
  readonly epsilon: number;
}

/**
 * Records SwAV's codes (Caron et al. 2020, `distributed_sinkhorn`): from prototype scores
 * [R, K] of R samples — a queue's earlier embeddings first, the batch's N last — an
 * equipartitioned soft assignment Q ∝ exp(scores / ε), `iterations` rounds of making every
 * prototype's total 1/K and every sample's total 1/B, of which the batch's N rows, each
 * summing to 1, are written into `codes` from row `codesRow` on. The first value of `skip`
 * says how many leading rows take no part (a queue not yet full: all of it), so B = R − skip.
 * No gradient.
 */
export function sinkhornCodes(
  program: Program,
  scores: Tensor,
  skip: StepValues,
  codes: Tensor,
  { kept, codesRow, iterations, epsilon }: SinkhornOptions & {
    readonly kept: number;
    readonly codesRow: number;
  },
): void {
  const [rows, classes] = scores.shape;
  if (
    scores.shape.length !== 2 || codes.shape[1] !== classes || kept > rows ||
    codesRow + kept > codes.shape[0] || !(iterations >= 1)
  ) {
    throw new Error(
      `Sinkhorn–Knopp: scores [${scores.shape}], ${kept} rows kept into codes ` +
        `[${codes.shape}] from row ${codesRow}, ${iterations} iterations`,
    );
  }
  const q = program.temp([rows, classes], "Sinkhorn assignment");
  for (let i = 0; i < iterations; i++) {
    program.dispatch(
      sinkhornColumnsKernel,
      [skip.tensor, scores, q],
      Math.ceil(classes / 256),
      [rows, classes, f32(epsilon), i === 0 ? 1 : 0],
    );
    program.dispatch(sinkhornRowsKernel, [skip.tensor, q, codes], rows, [
      rows,
      classes,
      kept,
      codesRow,
      i === iterations - 1 ? 1 : 0,
    ]);
  }
}
