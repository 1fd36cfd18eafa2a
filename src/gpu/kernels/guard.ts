import type { Kernel } from "../kernel.ts";
import guard from "../../../shaders/dispatch_guard.wgsl" with { type: "text" };

/** Writes the grids of guarded dispatches, or zeros; 64 u32s per workgroup. */
export const dispatchGuardKernel: Kernel = { name: "dispatch_guard", code: guard };
