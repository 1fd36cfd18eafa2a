import type { Gpu } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { SelfsupError } from "../errors.ts";
import {
  type Entry,
  type Initializer,
  Parameter,
  type ParameterKind,
  type RunningStat,
} from "./module.ts";

/** Where one parameter lies in the flat blocks. */
export interface Segment {
  readonly name: string;
  /** First element, a multiple of {@link segmentAlignment}. */
  readonly offset: number;
  readonly size: number;
  readonly kind: ParameterKind;
}

/**
 * Parameters start at multiples of 64 elements (256 bytes), the largest storage-binding
 * offset alignment WebGPU allows, so any parameter can be bound on its own. The gaps stay
 * zero in values, gradients and optimizer state, where every update leaves them zero.
 */
export const segmentAlignment = 64;

/**
 * Every parameter of a model in one flat block, their gradients in a second of the same
 * layout, and the running statistics in a third: an optimizer step or a gradient reset is
 * one dispatch over one buffer.
 */
export class ParameterBlock {
  readonly values: Tensor;
  readonly grads: Tensor;
  readonly stats: Tensor;
  readonly segments: readonly Segment[];
  readonly parameters: readonly (readonly [string, Parameter])[];
  readonly runningStats: readonly (readonly [string, RunningStat])[];
  /** The shape of every parameter and running statistic, by name. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly #statOffsets: readonly number[];

  constructor(readonly gpu: Gpu, entries: readonly Entry[]) {
    const parameters: [string, Parameter][] = [];
    const runningStats: [string, RunningStat][] = [];
    for (const [name, entry] of entries) {
      if (entry instanceof Parameter) parameters.push([name, entry]);
      else runningStats.push([name, entry]);
    }
    const segments: Segment[] = [];
    let length = 0;
    for (const [name, p] of parameters) {
      const count = p.shape.reduce((a, b) => a * b, 1);
      segments.push({ name, offset: length, size: count, kind: p.kind });
      length += Math.ceil(count / segmentAlignment) * segmentAlignment;
    }
    const statOffsets: number[] = [];
    let statLength = 0;
    for (const [, s] of runningStats) {
      statOffsets.push(statLength);
      const count = s.shape.reduce((a, b) => a * b, 1);
      statLength += Math.ceil(count / segmentAlignment) * segmentAlignment;
    }
    this.values = gpu.tensor([Math.max(length, 1)], "parameters");
    this.grads = gpu.tensor([Math.max(length, 1)], "gradients");
    this.stats = gpu.tensor([Math.max(statLength, 1)], "running statistics");
    parameters.forEach(([, p], i) => {
      const { offset } = segments[i];
      p.bind(this.values.slice(offset, p.shape), this.grads.slice(offset, p.shape));
    });
    runningStats.forEach(([, s], i) => s.bind(this.stats.slice(statOffsets[i], s.shape)));
    this.segments = segments;
    this.parameters = parameters;
    this.runningStats = runningStats;
    this.#statOffsets = statOffsets;
    this.shapes = new Map([...parameters, ...runningStats].map(([name, e]) => [name, e.shape]));
  }

  /**
   * Fills parameters and statistics with their initial values; `random` is uniform on [0, 1).
   * `initializerOf` may replace a parameter's own initializer (a method that initialises the
   * layers it borrows its own way, as MAE does the ViT's).
   */
  initialize(
    random: () => number,
    initializerOf: (name: string, parameter: Parameter) => Initializer = (_, p) => p.init,
  ): void {
    const values = new Float32Array(this.values.size);
    this.parameters.forEach(([name, p], i) => {
      const { offset, size } = this.segments[i];
      values.set(initializerOf(name, p)(size, random), offset);
    });
    const stats = new Float32Array(this.stats.size);
    this.runningStats.forEach(([, s], i) => {
      stats.set(s.init(s.value.size, random), this.#statOffsets[i]);
    });
    this.gpu.write(this.values, values);
    this.gpu.write(this.stats, stats);
  }

  /** Every parameter and running statistic by name, read back from the GPU. */
  async read(): Promise<Map<string, Float32Array>> {
    const [values, stats] = await this.gpu.read(this.values, this.stats) as Float32Array[];
    return this.unpack(values, stats);
  }

  /** Splits copies of the flat value and statistic blocks into tensors by name. */
  unpack(values: Float32Array, stats: Float32Array): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    this.parameters.forEach(([name], i) => {
      const { offset, size } = this.segments[i];
      out.set(name, values.slice(offset, offset + size));
    });
    this.runningStats.forEach(([name, s], i) => {
      const offset = this.#statOffsets[i];
      out.set(name, stats.slice(offset, offset + s.value.size));
    });
    return out;
  }

  /** The gradient of every parameter by name, read back from the GPU. */
  async readGrads(): Promise<Map<string, Float32Array>> {
    const grads = await this.gpu.readF32(this.grads);
    const out = new Map<string, Float32Array>();
    for (const { name, offset, size } of this.segments) {
      out.set(name, grads.slice(offset, offset + size));
    }
    return out;
  }

  /**
   * Uploads values by name. Every parameter and statistic must be present with its size;
   * `source` names where they came from in the error.
   */
  load(values: ReadonlyMap<string, Float32Array>, source: string): void {
    const flat = new Float32Array(this.values.size);
    const stats = new Float32Array(this.stats.size);
    const take = (name: string, size: number) => {
      const v = values.get(name);
      if (!v) throw new SelfsupError(`${source} has no ${name}`);
      if (v.length !== size) {
        throw new SelfsupError(`${source}: ${name} has ${v.length} values, expected ${size}`);
      }
      return v;
    };
    for (const { name, offset, size } of this.segments) flat.set(take(name, size), offset);
    this.runningStats.forEach(([name, s], i) => {
      stats.set(take(name, s.value.size), this.#statOffsets[i]);
    });
    this.gpu.write(this.values, flat);
    this.gpu.write(this.stats, stats);
  }

  /**
   * Uploads only the entries named in `names`, leaving the others as they are: a partial
   * load, such as a pre-trained backbone under a new classifier. Each must be present in
   * `values` with its size; `source` names where they came from in the error.
   */
  loadSome(
    values: ReadonlyMap<string, Float32Array>,
    names: Iterable<string>,
    source: string,
  ): void {
    const entries = new Map<string, Parameter | RunningStat>([
      ...this.parameters,
      ...this.runningStats,
    ]);
    for (const name of names) {
      const entry = entries.get(name);
      if (!entry) throw new Error(`${name} is not an entry of this block`);
      const v = values.get(name);
      if (!v) throw new SelfsupError(`${source} has no ${name}`);
      if (v.length !== entry.value.size) {
        throw new SelfsupError(
          `${source}: ${name} has ${v.length} values, expected ${entry.value.size}`,
        );
      }
      this.gpu.write(entry.value, v as Float32Array<ArrayBuffer>);
    }
  }

  destroy(): void {
    for (const t of [this.values, this.grads, this.stats]) this.gpu.release(t.buffer);
  }
}
