// What the optimizers share: the table that tells kernels over the flat block which elements
// belong to which parameter and which of them are decayed or frozen, each parameter's step
// values (its learning rate scaled), the pieces of per-parameter norms, zeroed state, step
// checks.
import { type Gpu, Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type ParameterBlock, type Segment, segmentAlignment } from "../nn/parameters.ts";
import { SelfsupError } from "../errors.ts";

/**
 * One u32 per 64-element chunk of the flat block (parameters start at multiples of 64, so
 * every chunk lies in one parameter): how many of its elements belong to the parameter
 * (bits 0–6; the rest is padding, which kernels skip so it stays zero whatever the gradient
 * buffer holds there), whether the parameter is decayed (and, under LARS, adapted) (bit 7),
 * and its segment index (bits 8–31). With `excludeBiasAndNorm` only weights are decayed;
 * biases and normalisation parameters are not, as SimCLR, BYOL and MAE train them.
 *
 * A frozen parameter's chunks count no element as its own, so the kernels skip it whole:
 * its values and its optimizer state stay as they are, as PyTorch's optimizers skip a
 * parameter whose gradient is None.
 */
export class ChunkTable {
  readonly tensor: Tensor;
  /** u32, one per parameter (segment): the index of its first chunk in {@link tensor}. */
  readonly firstChunks: Tensor;
  #frozen = "";

  constructor(
    readonly gpu: Gpu,
    readonly block: ParameterBlock,
    readonly excludeBiasAndNorm: boolean,
  ) {
    // The kernels find an element's chunk as i >> 6.
    if (segmentAlignment !== 64) throw new Error("Optimizer kernels need 64-element alignment");
    this.tensor = gpu.tensor(
      [Math.ceil(block.values.size / segmentAlignment)],
      "optimizer chunk table",
      "u32",
    );
    this.#write(new Set());
    this.firstChunks = gpu.tensor(
      [Math.max(block.segments.length, 1)],
      "optimizer first chunks",
      "u32",
    );
    if (block.segments.length) {
      gpu.write(
        this.firstChunks,
        Uint32Array.from(block.segments, (s) => s.offset / segmentAlignment),
      );
    }
  }

  /**
   * Freezes the named parameters (and frees all others) for the submits that follow; the
   * table is rewritten only when the set changes.
   */
  freeze(names: readonly string[]): void {
    const known = new Set(this.block.segments.map((s) => s.name));
    const unknown = names.filter((name) => !known.has(name));
    if (unknown.length) throw new Error(`Cannot freeze ${unknown.join(", ")}: no such parameter`);
    const key = [...new Set(names)].sort().join("\n");
    if (key === this.#frozen) return;
    this.#frozen = key;
    this.#write(new Set(names));
  }

  destroy(): void {
    this.gpu.release(this.tensor.buffer);
    this.gpu.release(this.firstChunks.buffer);
  }

  #write(frozen: ReadonlySet<string>): void {
    const table = new Uint32Array(this.tensor.size);
    this.block.segments.forEach(({ name, offset, size, kind }, index) => {
      for (let start = 0; start < size; start += segmentAlignment) {
        const live = frozen.has(name) ? 0 : Math.min(segmentAlignment, size - start);
        const decayed = kind === "weight" || !this.excludeBiasAndNorm;
        table[(offset + start) / segmentAlignment] = (index << 8) | (decayed ? 128 : 0) | live;
      }
    });
    this.gpu.write(this.tensor, table);
  }
}

/**
 * Elements of a parameter summed by one workgroup in the first stage of per-parameter norms
 * (LARS's trust ratios, gradient clipping): large enough that llvmpipe runs few workgroups,
 * small enough that a 2.4M-element weight spreads over hundreds of them on a GPU.
 */
const pieceSize = 4096;

/**
 * The pieces per-parameter norms are summed over, as lars_norms takes them: each chosen
 * segment cut into pieces of at most {@link pieceSize} elements (`pieces`, [begin, end) in
 * the flat block), and each segment's range of pieces (`segmentPieces`, [first, end); empty
 * for segments left out), with room for the pieces' partial sums.
 */
export class NormPieces {
  readonly pieces: Tensor;
  readonly segmentPieces: Tensor;
  readonly partials: Tensor;
  readonly count: number;

  constructor(
    readonly gpu: Gpu,
    block: ParameterBlock,
    include: (segment: Segment) => boolean,
    label: string,
  ) {
    const pieces: number[] = [];
    const segmentPieces = new Uint32Array(2 * Math.max(block.segments.length, 1));
    block.segments.forEach((segment, index) => {
      const { offset, size } = segment;
      segmentPieces[2 * index] = pieces.length / 2;
      if (include(segment)) {
        for (let start = 0; start < size; start += pieceSize) {
          pieces.push(offset + start, offset + Math.min(size, start + pieceSize));
        }
      }
      segmentPieces[2 * index + 1] = pieces.length / 2;
    });
    this.count = pieces.length / 2;
    this.pieces = gpu.tensor([Math.max(pieces.length, 2)], `${label} pieces`, "u32");
    if (pieces.length) gpu.write(this.pieces, Uint32Array.from(pieces));
    this.segmentPieces = gpu.tensor([segmentPieces.length], `${label} segment pieces`, "u32");
    gpu.write(this.segmentPieces, segmentPieces);
    this.partials = gpu.tensor([2 * Math.max(this.count, 1)], `${label} partial norms`);
  }

  destroy(): void {
    for (const t of [this.pieces, this.segmentPieces, this.partials]) {
      this.gpu.release(t.buffer);
    }
  }
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
