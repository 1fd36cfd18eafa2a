import type { Program } from "../gpu/gpu.ts";
import { f32 } from "../gpu/kernel.ts";
import { dinoCenterUpdateKernel, dinoTeacherSoftmaxKernel } from "../gpu/kernels/multicrop.ts";
import type { StepValues } from "../gpu/step_values.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * Records DINO's teacher targets: softmax((t − c) / τ_t) of each row of the teacher's outputs
 * t [R, K], centred by c [K] and sharpened by the teacher temperature, whose inverse 1/τ_t is
 * the first value of `step` (it follows a schedule).
 */
export function dinoTeacherTargets(
  program: Program,
  teacher: Tensor,
  center: Tensor,
  step: StepValues,
): Tensor {
  const [rows, classes] = teacher.shape;
  if (teacher.shape.length !== 2 || center.size !== classes) {
    throw new Error(`DINO's targets: teacher [${teacher.shape}], centre [${center.shape}]`);
  }
  const targets = program.temp([rows, classes], "DINO teacher targets");
  program.dispatch(dinoTeacherSoftmaxKernel, [step.tensor, teacher, center, targets], rows, [
    rows,
    classes,
  ]);
  return targets;
}

/**
 * Records DINO's centre update from the teacher's raw outputs t [R, K], after the targets
 * have read the centre: c ← c·m + mean_rows(t)·(1 − m).
 */
export function updateDinoCenter(
  program: Program,
  teacher: Tensor,
  center: Tensor,
  momentum: number,
): void {
  const [rows, classes] = teacher.shape;
  program.dispatch(dinoCenterUpdateKernel, [teacher, center], Math.ceil(classes / 256), [
    rows,
    classes,
    f32(momentum),
    f32(1 - momentum),
  ]);
}
