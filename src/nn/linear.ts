import type { Program } from "../gpu/gpu.ts";
import {
  linearBackwardInputKernel,
  linearBackwardWeightKernel,
  linearBackwardWeightReduceKernel,
  linearForwardKernel,
  linearPadKernel,
  linearTiledKernels,
} from "../gpu/kernels/linear.ts";
import { type Precision, precisionOf, type TileSide } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  type Entry,
  type Forward,
  type ForwardOptions,
  type Initializer,
  type Layer,
  Parameter,
} from "./module.ts";
import { uniform } from "./init.ts";
import { gemmTile, tileArea } from "./gemm_tile.ts";
import { weightFor } from "./precision.ts";

// Outputs per invocation along each side, and invocations per workgroup, of the CPU family's
// GEMM kernels.
const block = 16;
const workgroup = 64;

// On GPU adapters the passes run as GEMMs tiled in workgroup memory, 64 × 64 or 128 × 128
// outputs per workgroup (chosen per pass by gemmTile): the CPU family's register blocks (256
// accumulators per invocation) would spill out of a GPU's registers, and its 16 × 16 tiles
// leave most of a GPU idle.

/** How a linear pass is computed, for tests and benchmarks; by default chosen from the shape. */
export interface LinearOptions {
  /**
   * The tiled kernels' output tile (64 × 64 or 128 × 128 per workgroup). Giving it runs the
   * tiled kernels on any adapter (they are correct on all). By default the tiled family runs
   * on GPUs and for f16 operands, with 128 × 128 tiles where the pass alone has enough of them
   * to fill a large GPU.
   */
  readonly tile?: TileSide;
}

/**
 * Whether the passes run as the tiled GEMMs: on GPU adapters, for f16 operands, which only
 * the tiled family has (it is correct on any adapter), and when a tile is asked for.
 */
function tiled(program: Program, precision: Precision, options: LinearOptions): boolean {
  return program.gpu.adapterClass === "gpu" || precision === "f16" || options.tile !== undefined;
}

// The kernels load vec4 rows, so a matrix whose rows are not a multiple of 4 wide is copied
// into a zero-padded one first (only odd layer widths pay for this).
function padded(program: Program, t: Tensor, rows: number, cols: number, label: string): Tensor {
  const [r, c] = t.shape;
  if (rows === r && cols === c) return t;
  const out = program.temp([rows, cols], `${label} padded`);
  program.dispatch(linearPadKernel, [t, out], Math.ceil(out.size / 256), [r, c, cols, out.size]);
  return out;
}

const up4 = (n: number) => Math.ceil(n / 4) * 4;

function matrixShape(t: Tensor, what: string): [number, number] {
  if (t.shape.length !== 2) throw new Error(`Linear ${what} must be 2-D, got [${t.shape}]`);
  return [t.shape[0], t.shape[1]];
}

/**
 * Records y = x·Wᵀ + b for x [N, in], weight [out, in] and bias [out] (null: no bias);
 * returns y [N, out].
 */
export function linearForward(
  program: Program,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: LinearOptions = {},
): Tensor {
  const [m, k] = matrixShape(x, "input");
  const [n, wk] = matrixShape(weight, "weight");
  if (wk !== k || (bias && bias.size !== n)) {
    throw new Error(`Linear: input [${x.shape}], weight [${weight.shape}], bias [${bias?.shape}]`);
  }
  const precision = precisionOf(x, weight);
  const y = program.temp([m, n], "linear output", precision);
  const b = bias ?? zeroBias(program, n);
  if (tiled(program, precision, options)) {
    const tile = gemmTile(m, n, options.tile);
    const grid = [Math.ceil(n / tile), Math.ceil(m / tile)] as const;
    program.dispatch(
      linearTiledKernels[tile][precision].forward,
      [x, weight, b, y],
      grid,
      [m, n, k, k, 0],
      2 * m * n * k,
    );
    return y;
  }
  const xp = padded(program, x, m, up4(k), "linear input");
  const wp = padded(program, weight, n, up4(k), "linear weight");
  const tilesN = Math.ceil(n / block);
  const tiles = Math.ceil(m / block) * tilesN;
  program.dispatch(
    linearForwardKernel,
    [xp, wp, b, y],
    Math.ceil(tiles / workgroup),
    [m, n, up4(k) / 4, tilesN],
    2 * m * n * k,
  );
  return y;
}

/** Records gx = gy·W for gy [N, out] and weight [out, in]; returns gx [N, in] (overwritten). */
export function linearBackwardInput(
  program: Program,
  gradY: Tensor,
  weight: Tensor,
  options: LinearOptions = {},
): Tensor {
  const [m, k] = matrixShape(gradY, "output gradient");
  const [wk, n] = matrixShape(weight, "weight");
  if (wk !== k) throw new Error(`Linear: gradient [${gradY.shape}], weight [${weight.shape}]`);
  const precision = precisionOf(gradY, weight);
  const gx = program.temp([m, n], "linear input gradient", precision);
  if (tiled(program, precision, options)) {
    const tile = gemmTile(m, n, options.tile);
    const grid = [Math.ceil(n / tile), Math.ceil(m / tile)] as const;
    const kernel = linearTiledKernels[tile][precision].backwardInput;
    program.dispatch(kernel, [gradY, weight, gx], grid, [m, n, k, k, 0], 2 * m * n * k);
    return gx;
  }
  const gp = padded(program, gradY, m, up4(k), "linear output gradient");
  const wp = padded(program, weight, up4(k), up4(n), "linear weight");
  const tilesN = Math.ceil(n / block);
  const tiles = Math.ceil(m / block) * tilesN;
  program.dispatch(
    linearBackwardInputKernel,
    [gp, wp, gx],
    Math.ceil(tiles / workgroup),
    [m, n, up4(k) / 4, up4(n) / 4, tilesN],
    2 * m * n * k,
  );
  return gx;
}

// Output tiles worth having at once: llvmpipe needs a few workgroups of 64 invocations per
// core (a 16 × 16 tile each), a GPU about a thousand workgroups of 64 × 64 tiles (or a
// quarter as many of 128 × 128).
// Splitting the batch finds them when the weight is small (a probe, a projection head).
const targetTiles = { cpu: 256, gpu: 1024 };
// Fewer batch rows than this per split would cost more in partial sums than they save.
const minRowsPerSplit = 64;

// The GEMM kernels always add a bias: a bias-free layer gives them zeros.
function zeroBias(program: Program, n: number): Tensor {
  const zeros = program.temp([n], "linear zero bias");
  program.clear(zeros);
  return zeros;
}

/**
 * Records gW += gyᵀ·x and gb += Σ_rows gy for x [N, in], gy [N, out], gradWeight [out, in]
 * and gradBias [out] (parameter gradients accumulate; null: a bias-free layer, whose bias
 * sums go to scratch memory nothing reads). A long batch with a small weight is split into
 * partial sums that a second kernel adds up.
 */
export function linearBackwardWeight(
  program: Program,
  x: Tensor,
  gradY: Tensor,
  gradWeight: Tensor,
  gradBias: Tensor | null,
  options: LinearOptions = {},
): void {
  const [k, n] = matrixShape(x, "input");
  const [gk, m] = matrixShape(gradY, "output gradient");
  if (gk !== k || gradWeight.size !== m * n || (gradBias && gradBias.size !== m)) {
    throw new Error(
      `Linear: input [${x.shape}], gradient [${gradY.shape}], weight gradient ` +
        `[${gradWeight.shape}], bias gradient [${gradBias?.shape}]`,
    );
  }
  const biasSums = gradBias ?? program.temp([m], "unused bias gradient");
  const precision = precisionOf(x, gradY);
  const isTiled = tiled(program, precision, options);
  const tile = gemmTile(m, n, options.tile);
  const side = isTiled ? tile : block;
  const tilesN = Math.ceil(n / side);
  const tiles = Math.ceil(m / side) * tilesN;
  // On GPUs in 64 × 64 tiles' work: a 128 × 128 tile holds four.
  const work = isTiled ? tiles * tileArea(tile) : tiles;
  const wanted = Math.ceil(targetTiles[program.gpu.adapterClass] / work);
  const maxSplits = Math.max(1, Math.floor(k / minRowsPerSplit));
  const rowsPerSplit = Math.ceil(k / Math.min(wanted, maxSplits));
  // Every split must get rows: each one writes its whole slice of partial sums.
  const splits = Math.ceil(k / rowsPerSplit);
  const flops = 2 * m * n * k;
  // Records the sums of every split: into the gradients (accumulate 1, one split) or into
  // each split's slice of partial sums (0).
  let sums: (outW: Tensor, outB: Tensor, accumulate: number) => void;
  if (isTiled) {
    const grid = [tilesN, Math.ceil(m / tile), splits] as const;
    const kernel = linearTiledKernels[tile][precision].backwardWeight;
    sums = (outW, outB, accumulate) =>
      program.dispatch(
        kernel,
        [gradY, x, outW, outB],
        grid,
        [m, n, k, rowsPerSplit, accumulate],
        flops,
      );
  } else {
    const gp = padded(program, gradY, k, up4(m), "linear output gradient");
    const xp = padded(program, x, k, up4(n), "linear input");
    const grid = Math.ceil((tiles * splits) / workgroup);
    sums = (outW, outB, accumulate) =>
      program.dispatch(
        linearBackwardWeightKernel,
        [gp, xp, outW, outB],
        grid,
        [m, n, k, up4(m) / 4, up4(n) / 4, tilesN, tiles, rowsPerSplit, accumulate],
        flops,
      );
  }
  if (splits === 1) {
    sums(gradWeight, biasSums, 1);
    return;
  }
  const partW = program.temp([splits, m * n], "linear weight gradient partial sums");
  const partB = program.temp([splits, m], "linear bias gradient partial sums");
  sums(partW, partB, 0);
  program.dispatch(
    linearBackwardWeightReduceKernel,
    [partW, partB, gradWeight, biasSums],
    Math.ceil((m * n + m) / 256),
    [m, n, splits],
  );
}

/** Initial values of a {@link Linear} layer's parameters, when not PyTorch's default. */
export interface LinearInit {
  readonly weight?: Initializer;
  /** null: no bias, as `nn.Linear(in, out, bias=False)`. */
  readonly bias?: Initializer | null;
}

/**
 * A fully connected layer, y = x·Wᵀ + b, on inputs [..., inFeatures]: leading dimensions are
 * flattened into the rows of one GEMM (tokens of a transformer) and restored on the output.
 * Parameters are named and shaped as PyTorch's `nn.Linear` (weight [out, in], bias [out], or
 * no bias with `bias: null`) and by default initialised as it does: both uniform on
 * ±1/√inFeatures. On f16 inputs it computes with an f16 copy of its (f32) weight, cast in each
 * step, as Conv2d does; the bias and both gradients stay f32.
 */
export class Linear implements Layer {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, init: LinearInit = {}) {
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = new Parameter([outFeatures, inFeatures], "weight", init.weight ?? uniform(bound));
    this.bias = init.bias === null
      ? null
      : new Parameter([outFeatures], "bias", init.bias ?? uniform(bound));
  }

  entries(): Entry[] {
    return this.bias ? [["weight", this.weight], ["bias", this.bias]] : [["weight", this.weight]];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const shape = input.shape;
    if (shape.length < 2 || shape[shape.length - 1] !== this.inFeatures) {
      throw new Error(`Linear(${this.inFeatures}, ${this.outFeatures}) got input [${shape}]`);
    }
    const rows = input.size / this.inFeatures;
    const x = input.reshape([rows, this.inFeatures]);
    const weight = weightFor(program, this.weight.value, input);
    const y = linearForward(program, x, weight, this.bias?.value ?? null);
    return {
      output: y.reshape([...shape.slice(0, -1), this.outFeatures]),
      backward: (p, gradOutput) => {
        const gradY = gradOutput.reshape([rows, this.outFeatures]);
        linearBackwardWeight(p, x, gradY, this.weight.grad, this.bias?.grad ?? null);
        return options.inputGrad ? linearBackwardInput(p, gradY, weight).reshape(shape) : undefined;
      },
    };
  }
}
