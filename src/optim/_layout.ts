// What the optimizers share: the table that tells kernels over the flat block which elements
// belong to which parameter and which of them are decayed, each parameter's step values (its
// learning rate scaled), zeroed state, step checks.
import { type Gpu, Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type ParameterBlock, segmentAlignment } from "../nn/parameters.ts";
import { SelfsupError } from "../errors.ts";

/**
 * One u32 per 64-element chunk of the flat block (parameters start at multiples of 64, so
 * every chunk lies in one parameter): how many of its elements belong to the parameter
 * (bits 0–6; the rest is padding, which kernels skip so it stays zero whatever the gradient
 * buffer holds there), whether the parameter is decayed (and, under LARS, adapted) (bit 7),
 * and its segment index (bits 8–31). With `excludeBiasAndNorm` only weights are decayed;
 * biases and normalisation parameters are not, as SimCLR, BYOL and MAE train them.
 */
export function chunkTable(gpu: Gpu, block: ParameterBlock, excludeBiasAndNorm: boolean): Tensor {
  // The kernels find an element's chunk as i >> 6.
  if (segmentAlignment !== 64) throw new Error("Optimizer kernels need 64-element alignment");
  const table = new Uint32Array(Math.ceil(block.values.size / segmentAlignment));
  block.segments.forEach(({ offset, size, kind }, index) => {
    for (let start = 0; start < size; start += segmentAlignment) {
      const live = Math.min(segmentAlignment, size - start);
      const decayed = kind === "weight" || !excludeBiasAndNorm;
      table[(offset + start) / segmentAlignment] = (index << 8) | (decayed ? 128 : 0) | live;
    }
  });
  const tensor = gpu.tensor([table.length], "optimizer chunk table", "u32");
  gpu.write(tensor, table);
  return tensor;
}

/**
 * The values an update uses that change from step to step, one row per parameter (segment),
 * so that each parameter can learn at its own rate: the run's learning rate times the
 * parameter's scale (1 unless `lrScale` says otherwise), as PyTorch's parameter groups with
 * an `lr_scale` (MAE's layer-wise decay) compute it. Rows are computed in float64 on the host,
 * once per distinct scale, and written before each submit; kernels find an element's row
 * through the segment index of its chunk (`chunks[i >> 6] >> 8`).
 */
export class SegmentSteps<Name extends string> {
  readonly tensor: Tensor;
  readonly #scales: readonly number[];
  readonly #values: Float32Array;

  constructor(
    readonly gpu: Gpu,
    block: ParameterBlock,
    readonly names: readonly Name[],
    label: string,
    lrScale?: (parameter: string) => number,
  ) {
    this.#scales = block.segments.map(({ name }) => {
      const scale = lrScale ? lrScale(name) : 1;
      if (!(scale >= 0) || !Number.isFinite(scale)) {
        throw new SelfsupError(
          `The learning-rate scale of ${name} must be a finite number ≥ 0, got ${scale}`,
        );
      }
      return scale;
    });
    const rows = Math.max(block.segments.length, 1);
    this.tensor = gpu.tensor([rows, names.length], `${label} step values`);
    this.#values = new Float32Array(this.tensor.size);
  }

  /**
   * Writes every parameter's row for the submits that follow: `valuesAt` gets the
   * parameter's learning rate (`learningRate` times its scale).
   */
  write(
    learningRate: number,
    valuesAt: (learningRate: number) => Readonly<Record<Name, number>>,
  ): void {
    const byScale = new Map<number, Readonly<Record<Name, number>>>();
    const k = this.names.length;
    this.#scales.forEach((scale, row) => {
      let values = byScale.get(scale);
      if (!values) {
        values = valuesAt(learningRate * scale);
        byScale.set(scale, values);
      }
      this.names.forEach((name, i) => {
        if (!Number.isFinite(values[name])) {
          throw new Error(`Step value ${name} must be finite, got ${values[name]}`);
        }
        this.#values[row * k + i] = values[name];
      });
    });
    this.gpu.write(this.tensor, this.#values);
  }

  destroy(): void {
    this.gpu.release(this.tensor.buffer);
  }
}

/** Zero-filled state tensors shaped like the flat block, by name. */
export function zeroState(
  gpu: Gpu,
  block: ParameterBlock,
  names: readonly string[],
): Map<string, Tensor> {
  const state = new Map<string, Tensor>();
  const clear = new Program(gpu, "optimizer state");
  for (const name of names) {
    const tensor = gpu.tensor(block.values.shape, `optimizer ${name}`);
    clear.clear(tensor);
    state.set(name, tensor);
  }
  // Queued ahead of any later submit, so the state is zero before the first update.
  gpu.submit(clear);
  return state;
}

/** Checks a step number and learning rate, as `Optimizer.prepare` takes them. */
export function checkStep(step: number, learningRate: number): void {
  if (!Number.isInteger(step) || step < 1) {
    throw new Error(`Optimizer steps count from 1, got ${step}`);
  }
  if (!(learningRate >= 0) || !Number.isFinite(learningRate)) {
    throw new Error(`Learning rate must be a finite number ≥ 0, got ${learningRate}`);
  }
}
