import type { Kernel } from "../kernel.ts";
import reluForward from "../../../shaders/relu_forward.wgsl" with { type: "text" };
import reluBackward from "../../../shaders/relu_backward.wgsl" with { type: "text" };
import addForward from "../../../shaders/add_forward.wgsl" with { type: "text" };

/** Elementwise kernels over `n` values; dispatch `ceil(n / 256)` workgroups. */
export const reluForwardKernel: Kernel = { name: "relu_forward", code: reluForward };
export const reluBackwardKernel: Kernel = { name: "relu_backward", code: reluBackward };
export const addForwardKernel: Kernel = { name: "add_forward", code: addForward };
