import type { Program } from "../gpu/gpu.ts";
import { addForwardKernel } from "../gpu/kernels/elementwise.ts";
import { inPrecision, precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * Records y = a + b, in the precision of a and b (which must agree). Used forward for the
 * residual join and backward to sum the gradients of the two branches that leave a block's
 * input; the join's own backward is the identity.
 */
export function add(program: Program, a: Tensor, b: Tensor): Tensor {
  if (a.size !== b.size) throw new Error(`Cannot add [${a.shape}] and [${b.shape}]`);
  const precision = precisionOf(a, b);
  const y = program.temp(a.shape, "sum", precision);
  const kernel = inPrecision(addForwardKernel, precision);
  program.dispatch(kernel, [a, b, y], Math.ceil(a.size / 256), [a.size]);
  return y;
}
