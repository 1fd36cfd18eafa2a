import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { infoNceRowsKernel, lossMeanKernel } from "../gpu/kernels/loss.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { add } from "../nn/add.ts";
import { linearBackwardInput, linearForward } from "../nn/linear.ts";

/** What {@link infoNceWithQueue} records: the loss and the gradient for the queries. */
export interface InfoNceOutput {
  /** scale · Σ rows' losses, one value. */
  readonly loss: Tensor;
  /** ∂loss/∂queries [N, D]; the keys and the queue get no gradient. */
  readonly gradQueries: Tensor;
}

/**
 * Records MoCo's InfoNCE loss (He et al. 2020), forward and backward together: for unit
 * queries q̂ [N, D], their unit positive keys k̂ [N, D] and a queue of K unit negatives
 * [K, D], the logits of row i are (q̂ᵢ·k̂ᵢ, q̂ᵢ·queueᵀ)/τ, its loss the cross-entropy with the
 * positive as the label, and the loss `scale` times their sum (1/N: the mean). The queue is
 * read twice — for the logits and for the queries' gradient — so it must not change between
 * them: enqueue after this.
 *
 * `zeros` is a [K] tensor of zeros, the bias the GEMM kernels take.
 */
export function infoNceWithQueue(
  program: Program,
  queries: Tensor,
  keys: Tensor,
  queue: Tensor,
  zeros: Tensor,
  { temperature, scale }: { readonly temperature: number; readonly scale: number },
): InfoNceOutput {
  const [n, d] = queries.shape;
  const k = queue.shape[0];
  if (
    queries.shape.length !== 2 || keys.shape.join() !== queries.shape.join() ||
    queue.shape.length !== 2 || queue.shape[1] !== d || zeros.size !== k
  ) {
    throw new Error(
      `InfoNCE needs queries and keys [N, D] and a queue [K, D], got [${queries.shape}], ` +
        `[${keys.shape}], [${queue.shape}]`,
    );
  }
  const negatives = linearForward(program, queries, queue, zeros);
  const rowLoss = program.temp([n], "InfoNCE row losses");
  const gradNegatives = program.temp([n, k], "InfoNCE negative-logit gradient");
  const gradPositive = program.temp([n, d], "InfoNCE positive's query gradient");
  program.dispatch(
    infoNceRowsKernel,
    [queries, keys, negatives, rowLoss, gradNegatives, gradPositive],
    n,
    [n, d, k, f32(1 / temperature), f32(scale)],
  );
  const loss = program.temp([1], "InfoNCE loss");
  program.dispatch(lossMeanKernel, [rowLoss, loss], 1, [n, f32(scale)]);
  const gradFromQueue = linearBackwardInput(program, gradNegatives, queue);
  return { loss, gradQueries: add(program, gradFromQueue, gradPositive) };
}
