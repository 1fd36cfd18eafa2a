import type { Program } from "../gpu/gpu.ts";
import { lossAccumulateKernel } from "../gpu/kernels/loss.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * Records adding `loss` [1] to a running sum [1] that the program owns and returns. Each run
 * of the program adds its loss, so the host learns the sum over many runs with one read; it
 * sets the sum (to 0, or to where an interrupted epoch stopped) by writing it.
 */
export function recordLossSum(program: Program, loss: Tensor): Tensor {
  if (loss.size !== 1) throw new Error(`A loss sum adds one value, got [${loss.shape}]`);
  const sum = program.tensor([1], "loss sum");
  program.dispatch(lossAccumulateKernel, [loss, sum], 1);
  return sum;
}
