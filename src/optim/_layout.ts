// What the optimizers share: the table that tells kernels over the flat block which elements
// belong to which parameter, zeroed state, and the per-step value buffer.
import { type Gpu, Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type ParameterBlock, segmentAlignment } from "../nn/parameters.ts";

/**
 * One u32 per 64-element chunk of the flat block (parameters start at multiples of 64, so
 * every chunk lies in one parameter): how many of its elements belong to the parameter
 * (bits 0–6; the rest is padding, which kernels skip so it stays zero whatever the gradient
 * buffer holds there), whether the parameter is a weight (bit 7), and its segment index
 * (bits 8–31).
 */
export function chunkTable(gpu: Gpu, block: ParameterBlock): Tensor {
  // The kernels find an element's chunk as i >> 6.
  if (segmentAlignment !== 64) throw new Error("Optimizer kernels need 64-element alignment");
  const table = new Uint32Array(Math.ceil(block.values.size / segmentAlignment));
  block.segments.forEach(({ offset, size, kind }, index) => {
    for (let start = 0; start < size; start += segmentAlignment) {
      const live = Math.min(segmentAlignment, size - start);
      table[(offset + start) / segmentAlignment] = (index << 8) | (kind === "weight" ? 128 : 0) |
        live;
    }
  });
  const tensor = gpu.tensor([table.length], "optimizer chunk table", "u32");
  gpu.write(tensor, table);
  return tensor;
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

/** The per-step values a kernel reads, as a small tensor the optimizer rewrites each step. */
export class StepValues {
  readonly tensor: Tensor;

  constructor(readonly gpu: Gpu, count: number) {
    this.tensor = gpu.tensor([count], "optimizer step values");
  }

  /** Checks a step number and learning rate, as `Optimizer.prepare` takes them. */
  static check(step: number, learningRate: number): void {
    if (!Number.isInteger(step) || step < 1) {
      throw new Error(`Optimizer steps count from 1, got ${step}`);
    }
    if (!(learningRate >= 0) || !Number.isFinite(learningRate)) {
      throw new Error(`Learning rate must be a finite number ≥ 0, got ${learningRate}`);
    }
  }

  write(values: readonly number[]): void {
    this.gpu.write(this.tensor, Float32Array.from(values));
  }

  destroy(): void {
    this.gpu.release(this.tensor.buffer);
  }
}
