import type { Kernel } from "../kernel.ts";
import adamUpdate from "../../../shaders/adam_update.wgsl" with { type: "text" };
import adamCount from "../../../shaders/adam_count.wgsl" with { type: "text" };
import sgdUpdate from "../../../shaders/sgd_update.wgsl" with { type: "text" };
import larsNorms from "../../../shaders/lars_norms.wgsl" with { type: "text" };
import larsTrust from "../../../shaders/lars_trust.wgsl" with { type: "text" };
import segmentSums from "../../../shaders/segment_sums.wgsl" with { type: "text" };
import larsUpdate from "../../../shaders/lars_update.wgsl" with { type: "text" };
import gradClipCoefficients from "../../../shaders/grad_clip_coefficients.wgsl" with {
  type: "text",
};
import gradClipScale from "../../../shaders/grad_clip_scale.wgsl" with { type: "text" };
import emaUpdate from "../../../shaders/ema_update.wgsl" with { type: "text" };

/** Adam and AdamW over the flat block; dispatch ceil(n / 256) workgroups. */
export const adamUpdateKernel: Kernel = { name: "adam_update", code: adamUpdate };

/** Adam's step count per parameter, after its update; dispatch ceil(segments / 64). */
export const adamCountKernel: Kernel = { name: "adam_count", code: adamCount };

/** SGD with momentum over the flat block; dispatch ceil(n / 256) workgroups. */
export const sgdUpdateKernel: Kernel = { name: "sgd_update", code: sgdUpdate };

/** SGD without momentum (no buffer bound); dispatch ceil(n / 256) workgroups. */
export const sgdUpdatePlainKernel: Kernel = {
  name: "sgd_update",
  code: sgdUpdate,
  entryPoint: "without_momentum",
};

/** LARS stage 1: partial squared norms, one workgroup per piece of a weight. */
export const larsNormsKernel: Kernel = { name: "lars_norms", code: larsNorms };

/** LARS stage 2: trust ratio per segment, one workgroup per segment. */
export const larsTrustKernel: Kernel = { name: "lars_trust", code: segmentSums + larsTrust };

/** LARS stage 3: momentum update over the flat block; dispatch ceil(n / 256) workgroups. */
export const larsUpdateKernel: Kernel = { name: "lars_update", code: larsUpdate };

/** A moving average of one flat block into another; dispatch ceil(n / 256) workgroups. */
export const emaUpdateKernel: Kernel = { name: "ema_update", code: emaUpdate };

/** Gradient clipping stage 2: each parameter's factor, one workgroup per segment. */
export const gradClipCoefficientsKernel: Kernel = {
  name: "grad_clip_coefficients",
  code: segmentSums + gradClipCoefficients,
};

/** Gradient clipping stage 3: scaling over the flat block; dispatch ceil(n / 256) workgroups. */
export const gradClipScaleKernel: Kernel = { name: "grad_clip_scale", code: gradClipScale };
