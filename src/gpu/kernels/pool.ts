import type { Kernel } from "../kernel.ts";
import maxForward from "../../../shaders/max_pool_forward.wgsl" with { type: "text" };
import maxBackward from "../../../shaders/max_pool_backward.wgsl" with { type: "text" };
import avgForward from "../../../shaders/avg_pool_forward.wgsl" with { type: "text" };
import avgBackward from "../../../shaders/avg_pool_backward.wgsl" with { type: "text" };

/**
 * Max pooling forward with saved argmax (u32 index within the input plane); one invocation
 * per output, workgroups of 256. Params: H, W, OH, OW, kernel, stride, padding, outputs.
 */
export const maxPoolForwardKernel: Kernel = { name: "max_pool_forward", code: maxForward };

/**
 * Max pooling input gradient, gathered per input value; one invocation per input, workgroups
 * of 256. Params as {@link maxPoolForwardKernel}, with the input count last.
 */
export const maxPoolBackwardKernel: Kernel = { name: "max_pool_backward", code: maxBackward };

/** Global average pooling; one invocation per plane, workgroups of 64. Params: N·C, H·W. */
export const avgPoolForwardKernel: Kernel = { name: "avg_pool_forward", code: avgForward };

/** Global average pooling input gradient; workgroups of 256. Params: N·C·H·W, H·W. */
export const avgPoolBackwardKernel: Kernel = { name: "avg_pool_backward", code: avgBackward };
