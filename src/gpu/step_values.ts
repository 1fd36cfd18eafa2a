import type { Gpu } from "./gpu.ts";
import type { Tensor } from "./tensor.ts";

/**
 * Values that change from step to step while the recorded program stays the same: a learning
 * rate, Adam's bias corrections, an EMA rate, a queue position. They live in a small tensor
 * that any kernel binds (as a struct or an array) and that the host rewrites before each
 * submit; the write is queued, so it reaches only the submits after it.
 *
 * Integers (a queue slot) are stored as floats: exact up to 2²⁴.
 *
 * @example
 * ```ts ignore
 * const values = new StepValues(gpu, ["rate", "oneMinusRate"], "EMA rate");
 * program.dispatch(emaKernel, [values.tensor, target, online], grid, [n]);
 * values.write({ rate: 0.99, oneMinusRate: 0.01 });
 * gpu.submit(program);
 * ```
 */
export class StepValues<Name extends string = string> {
  readonly tensor: Tensor;
  readonly #values: Float32Array;

  constructor(readonly gpu: Gpu, readonly names: readonly Name[], label: string) {
    this.tensor = gpu.tensor([Math.max(names.length, 1)], `${label} step values`);
    this.#values = new Float32Array(this.tensor.size);
  }

  /** The element of `name`, for kernels that index the tensor as an array. */
  index(name: Name): number {
    const i = this.names.indexOf(name);
    if (i < 0) throw new Error(`No step value ${name} in [${this.names}]`);
    return i;
  }

  /** Sets every value (each must be finite) for the submits that follow. */
  write(values: Readonly<Record<Name, number>>): void {
    this.names.forEach((name, i) => {
      const value = values[name];
      if (!Number.isFinite(value)) {
        throw new Error(`Step value ${name} must be finite, got ${value}`);
      }
      this.#values[i] = value;
    });
    this.gpu.write(this.tensor, this.#values);
  }

  destroy(): void {
    this.gpu.release(this.tensor.buffer);
  }
}
