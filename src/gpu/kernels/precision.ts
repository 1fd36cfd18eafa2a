import type { Kernel } from "../kernel.ts";
import toF16 from "../../../shaders/cast_to_f16.wgsl" with { type: "text" };
import toF32 from "../../../shaders/cast_to_f32.wgsl" with { type: "text" };
import unscale from "../../../shaders/loss_scale_unscale.wgsl" with { type: "text" };
import update from "../../../shaders/loss_scale_update.wgsl" with { type: "text" };

/** f32 → f16, elementwise; dispatch ceil(n / 256) workgroups. */
export const castToF16Kernel: Kernel = { name: "cast_to_f16", code: toF16 };

/** f32 · scale → f16, elementwise; dispatch ceil(n / 256) workgroups. */
export const castToF16ScaledKernel: Kernel = {
  name: "cast_to_f16",
  code: toF16,
  entryPoint: "scaled",
};

/** f16 → f32, elementwise; dispatch ceil(n / 256) workgroups. */
export const castToF32Kernel: Kernel = { name: "cast_to_f32", code: toF32 };

/** Divides gradients by the loss scale and flags any that is not finite; ceil(n / 256). */
export const lossScaleUnscaleKernel: Kernel = { name: "loss_scale_unscale", code: unscale };

/** Halves the loss scale after an overflow, doubles it after a run of good steps; 1 workgroup. */
export const lossScaleUpdateKernel: Kernel = { name: "loss_scale_update", code: update };
