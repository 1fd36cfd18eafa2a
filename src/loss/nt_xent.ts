import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import {
  lossMeanKernel,
  ntXentBackwardKernel,
  ntXentLogsumexpKernel,
  ntXentNormalizeBackwardKernel,
  ntXentNormalizeKernel,
  ntXentSimilarityBackwardKernel,
  ntXentSimilarityKernel,
} from "../gpu/kernels/loss.ts";
import type { Tensor } from "../gpu/tensor.ts";

/** A loss value and the gradient of that loss with respect to the loss's input. */
export interface LossOutput {
  /** The loss, one value. */
  readonly loss: Tensor;
  /** ∂loss/∂input, shaped like the input; overwritten each run. */
  readonly gradInput: Tensor;
}

/**
 * Records SimCLR's NT-Xent loss (Chen et al. 2020) of projections `z` [2N, D], forward and
 * backward together (the loss's gradient seed is 1). Rows i and i + N are the two views of
 * one image. Each row is normalised (as `F.normalize`, eps 1e-12), similarities are
 * ẑẑᵀ/τ with each row's self-similarity left out of its softmax, and the loss is the mean
 * over the 2N rows of the cross-entropy with the other view as the target.
 *
 * The [2N, 2N] similarity matrix is the largest intermediate: 2N = 4096 needs 64 MiB.
 *
 * @example
 * ```ts ignore
 * const { loss, gradInput } = ntXent(program, projections, 0.5);
 * ```
 */
export function ntXent(program: Program, z: Tensor, temperature: number): LossOutput {
  if (z.shape.length !== 2 || z.shape[0] < 2 || z.shape[0] % 2 !== 0 || z.shape[1] < 1) {
    throw new Error(`NT-Xent needs projections [2N, D] with N ≥ 1, got [${z.shape}]`);
  }
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new Error(`NT-Xent temperature must be positive, got ${temperature}`);
  }
  const [rows, cols] = z.shape;
  // The GEMMs work on 8×8 blocks of vec4s: ẑ and S are padded to multiples of 8 with zeros.
  const paddedRows = Math.ceil(rows / 8) * 8;
  const paddedCols = Math.ceil(cols / 8) * 8;
  // Element indices of the similarity matrix are u32.
  if (paddedRows * paddedRows > 0xffffffff) {
    throw new Error(`NT-Xent batch of ${rows} rows is too large`);
  }
  const zhat = program.temp([paddedRows, paddedCols], "nt-xent normalised projections");
  const norms = program.temp([rows], "nt-xent projection norms");
  const similarity = program.temp(
    [paddedRows, paddedRows],
    "nt-xent similarities, then their gradient",
  );
  const lse = program.temp([rows], "nt-xent row logsumexp");
  const rowLoss = program.temp([rows], "nt-xent row losses");
  const loss = program.temp([1], "nt-xent loss");
  const gradZhat = program.temp([paddedRows, paddedCols], "nt-xent normalised gradient");
  const gradInput = program.temp([rows, cols], "nt-xent input gradient");
  const rowBlocks = paddedRows / 8;

  program.dispatch(
    ntXentNormalizeKernel,
    [z, zhat, norms],
    Math.ceil(paddedRows / 64),
    [rows, cols, paddedRows, paddedCols],
  );
  program.dispatch(
    ntXentSimilarityKernel,
    [zhat, similarity],
    Math.ceil((rowBlocks * rowBlocks) / 64),
    [paddedRows, paddedCols, f32(1 / temperature)],
  );
  program.dispatch(ntXentLogsumexpKernel, [similarity, lse, rowLoss], rows, [rows, paddedRows]);
  program.dispatch(lossMeanKernel, [rowLoss, loss], 1, [rows, f32(1 / rows)]);

  program.dispatch(
    ntXentSimilarityBackwardKernel,
    [lse, similarity],
    Math.ceil((rows * paddedRows) / 256),
    [rows, paddedRows, f32(1 / (rows * temperature))],
  );
  program.dispatch(
    ntXentBackwardKernel,
    [similarity, zhat, gradZhat],
    Math.ceil((rowBlocks * (paddedCols / 8)) / 64),
    [rows, paddedRows, paddedCols],
  );
  program.dispatch(
    ntXentNormalizeBackwardKernel,
    [zhat, norms, gradZhat, gradInput],
    Math.ceil(rows / 64),
    [rows, cols, paddedCols],
  );
  return { loss, gradInput };
}
