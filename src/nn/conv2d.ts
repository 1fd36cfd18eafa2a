import type { Gpu, Program } from "../gpu/gpu.ts";
import {
  conv2dBackwardInput3x3Kernel,
  conv2dBackwardInputKernel,
  conv2dBackwardWeight3x3Kernel,
  conv2dBackwardWeightKernel,
  conv2dForward3x3Kernel,
  conv2dForwardKernel,
  conv2dPackActivationsKernel,
  conv2dPackWeightsKernel,
  conv2dReduceKernel,
  conv2dSplitSumKernel,
  conv2dTiledKernels,
  type Conv2dTiledSums,
} from "../gpu/kernels/conv2d.ts";
import { inPrecision, type Precision, precisionOf, type TileSide } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { normal } from "./init.ts";
import { weightFor } from "./precision.ts";
import { gemmTile, tileArea } from "./gemm_tile.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, Parameter } from "./module.ts";

/**
 * Which family of convolution kernels to record: `"direct"` keeps its tiles in registers
 * and uses no workgroup memory (fastest on CPU adapters such as llvmpipe); `"tiled"` stages
 * implicit-GEMM tiles in workgroup memory (for GPUs). f16 operands have only the tiled
 * family, which is correct on any adapter.
 */
export type Conv2dVariant = "direct" | "tiled";

/** The geometry of a square convolution with no bias, as in `torch.nn.Conv2d`. */
export interface Conv2dOptions {
  /** Step between output pixels, in input pixels. Default 1. */
  readonly stride?: number;
  /** Zero padding on each side of the input. Default 0. */
  readonly padding?: number;
  /**
   * Kernel family; by default `"tiled"` on GPU adapters and for f16 operands, `"direct"` on
   * CPU adapters.
   */
  readonly variant?: Conv2dVariant;
  /**
   * How many parts each pass's sum is split into (partial sums, then one reduction): the sum
   * over output pixels of the weight gradient, and in the tiled family also the sum over
   * (input channel, tap) of the forward and input-gradient passes, in parts of a multiple of
   * 16 terms. By default chosen from the shape so that the device has enough parallel work.
   */
  readonly splits?: number;
  /**
   * The tiled family's output tile: 64 × 64 or 128 × 128 outputs per workgroup (channels by
   * pixels; in the weight gradient, output channels by input channels and taps); giving it
   * implies `variant: "tiled"`. By default 128 in a pass whose output alone has enough such
   * tiles to fill a large GPU and at least 128 lines each way (see gemmTile), else 64.
   */
  readonly tile?: TileSide;
}

/** The output size along one axis: ⌊(size + 2·padding − kernel) / stride⌋ + 1. */
export function conv2dOutputSize(
  size: number,
  kernel: number,
  stride: number,
  padding: number,
): number {
  return Math.floor((size + 2 * padding - kernel) / stride) + 1;
}

/**
 * Records y = conv(x, weight) for x of shape [N, Cin, H, W] and weight [Cout, Cin, k, k];
 * returns y of shape [N, Cout, OH, OW], in their precision (f32, or f16).
 */
export function conv2dForward(
  program: Program,
  x: Tensor,
  weight: Tensor,
  options: Conv2dOptions = {},
): Tensor {
  const { batch, cin, h, w, cout, oh, ow, k, stride, padding } = geometry(
    x.shape,
    weight.shape,
    options,
  );
  const precision = precisionOf(x, weight);
  const variant = variantFor(program.gpu, options, precision);
  const y = program.temp([batch, cout, oh, ow], "conv2d output", precision);
  convolve(program, variant, "forward", x, weight, y, options, {
    reduce: cin,
    cols: cout,
    nu: k,
    nv: k,
    colStride: cin * k * k,
    rowStride: k * k,
    k,
    y0: 0,
    dy: 1,
    x0: 0,
    dx: 1,
  }, {
    batch,
    inH: h,
    inW: w,
    outH: oh,
    outW: ow,
    stride,
    padY: padding,
    padX: padding,
    planeH: oh,
    planeW: ow,
    stepY: 1,
    offsetY: 0,
    stepX: 1,
    offsetX: 0,
  });
  return y;
}

/**
 * Records the gradient of conv2d's input from `gradY` [N, Cout, OH, OW]; returns it, of
 * `inputShape` [N, Cin, H, W]. A transposed convolution, computed as stride² ordinary ones:
 * input pixels with the same (row mod stride, column mod stride) — one phase — receive
 * gradient through the same subset of taps, so each phase is a stride-1 convolution of
 * `gradY` with those taps flipped, written to every stride-th row and column. In the
 * precision of `gradY` and `weight` (f32, or f16).
 */
export function conv2dBackwardInput(
  program: Program,
  gradY: Tensor,
  weight: Tensor,
  inputShape: readonly number[],
  options: Conv2dOptions = {},
): Tensor {
  const g = geometry(inputShape, weight.shape, options);
  checkGradY(gradY, g);
  const precision = precisionOf(gradY, weight);
  const variant = variantFor(program.gpu, options, precision);
  const { batch, cin, h, w, cout, oh, ow, k, stride: s, padding } = g;
  const gradX = program.temp([batch, cin, h, w], "conv2d input gradient", precision);
  const phases = [];
  for (let a = 0; a < Math.min(s, h); a++) {
    for (let b = 0; b < Math.min(s, w); b++) {
      phases.push({ a, b, rows: phase(a, h, k, s, padding), cols: phase(b, w, k, s, padding) });
    }
  }
  // Input pixels that no tap reaches (kernel smaller than the stride) get zero gradient.
  if (phases.some(({ rows, cols }) => rows.taps * cols.taps === 0)) program.clear(gradX);
  for (const { a, b, rows, cols } of phases) {
    if (rows.taps * cols.taps === 0) continue;
    convolve(program, variant, "backward_input", gradY, weight, gradX, options, {
      reduce: cout,
      cols: cin,
      nu: rows.taps,
      nv: cols.taps,
      colStride: k * k,
      rowStride: cin * k * k,
      k,
      y0: rows.first,
      dy: -s,
      x0: cols.first,
      dx: -s,
    }, {
      batch,
      inH: oh,
      inW: ow,
      outH: rows.size,
      outW: cols.size,
      stride: 1,
      padY: rows.padding,
      padX: cols.padding,
      planeH: h,
      planeW: w,
      stepY: s,
      offsetY: a,
      stepX: s,
      offsetX: b,
    });
  }
  return gradX;
}

/**
 * Records gradWeight += the gradient of conv2d's weight, from the forward input `x`
 * [N, Cin, H, W] and `gradY` [N, Cout, OH, OW]. `gradWeight` [Cout, Cin, k, k] accumulates:
 * parameter gradients are zeroed once per step by the caller. `x` and `gradY` are f32 or
 * both f16; the gradient is f32 (a parameter's) either way.
 */
export function conv2dBackwardWeight(
  program: Program,
  x: Tensor,
  gradY: Tensor,
  gradWeight: Tensor,
  options: Conv2dOptions = {},
): void {
  const g = geometry(x.shape, gradWeight.shape, options);
  checkGradY(gradY, g);
  const precision = precisionOf(x, gradY);
  if (gradWeight.dtype !== "f32") {
    throw new Error(`conv2d weight gradient must be f32 (a parameter's), got ${gradWeight.dtype}`);
  }
  const variant = variantFor(program.gpu, options, precision);
  if (variant === "tiled") {
    weightGradTiled(program, x, gradY, gradWeight, g, options, precision);
  } else {
    weightGradDirect(program, x, gradY, gradWeight, g, options.splits);
  }
}

/**
 * A 2-D convolution with no bias, as `torch.nn.Conv2d(..., bias=False)`. Its weight starts
 * as torchvision's ResNet initialises convolutions: kaiming_normal_, mode "fan_out", ReLU
 * gain, i.e. normal with std √(2 / (outChannels·k²)).
 */
export class Conv2d implements Layer {
  readonly weight: Parameter;
  readonly #options: Conv2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: Conv2dOptions = {},
  ) {
    const sizes = { inChannels, outChannels, kernelSize };
    for (const [name, value] of Object.entries(sizes)) {
      if (!Number.isInteger(value) || value < 1) {
        throw new Error(`Conv2d ${name} must be a positive integer, got ${value}`);
      }
    }
    this.#options = options;
    this.weight = new Parameter(
      [outChannels, inChannels, kernelSize, kernelSize],
      "weight",
      normal(Math.sqrt(2 / (outChannels * kernelSize * kernelSize))),
    );
  }

  entries(): Entry[] {
    return [["weight", this.weight]];
  }

  /**
   * On f16 activations the layer computes with an f16 copy of its (f32) weight, cast in each
   * step, and accumulates the weight's gradient in f32.
   */
  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const weight = weightFor(program, this.weight.value, input);
    const output = conv2dForward(program, input, weight, this.#options);
    return {
      output,
      backward: (p, gradOutput) => {
        conv2dBackwardWeight(p, input, gradOutput, this.weight.grad, this.#options);
        if (!options.inputGrad) return undefined;
        return conv2dBackwardInput(p, gradOutput, weight, input.shape, this.#options);
      },
    };
  }
}

interface Geometry {
  batch: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  oh: number;
  ow: number;
  k: number;
  stride: number;
  padding: number;
}

/**
 * conv2d_pack_weights' parameters (see that shader) but its padded width, which depends on
 * the kernel family.
 */
interface PackParams {
  reduce: number;
  cols: number;
  nu: number;
  nv: number;
  colStride: number;
  rowStride: number;
  k: number;
  y0: number;
  dy: number;
  x0: number;
  dx: number;
}

/**
 * Where a convolution reads and writes, besides its channels and taps (which come from the
 * packing): the forward kernels' parameters, see conv2d_forward.wgsl.
 */
interface Placement {
  batch: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  stride: number;
  padY: number;
  padX: number;
  planeH: number;
  planeW: number;
  stepY: number;
  offsetY: number;
  stepX: number;
  offsetX: number;
}

// Output channels per workgroup row of the direct forward kernels; packed weight rows are
// padded to a multiple of it. (The tiled kernels' blocks are their tiles' side.)
const directChannelBlock = 16;

// Parallel work a pass aims for when it splits its sum: invocations on CPU adapters (SIMD
// lanes of two or more cores), workgroups of 64 × 64 tiles on GPUs (several per
// multiprocessor; of 128 × 128 tiles, a quarter as many).
const directTargetLanes = 2048;
const tiledTargetWorkgroups = 1024;
// The tiled forward and input-gradient passes split their sum over k only into parts of at
// least this many 16-deep slices: fewer would cost more in partial sums than they save.
const minSlicesPerSplit = 8;

/**
 * The kernel family for operands of `precision`: the one asked for (a tile asks for the tiled
 * one) or the adapter's in f32; in f16 the tiled one, the only family generated in f16.
 */
function variantFor(gpu: Gpu, options: Conv2dOptions, precision: Precision): Conv2dVariant {
  if (options.variant === "direct" && options.tile !== undefined) {
    throw new Error(`conv2d variant "direct" has no tiles; tile ${options.tile} is "tiled"'s`);
  }
  if (precision === "f32") {
    const tiled = gpu.adapterClass === "gpu" || options.tile !== undefined;
    return options.variant ?? (tiled ? "tiled" : "direct");
  }
  if (options.variant === "direct") {
    throw new Error(`conv2d variant "direct" has no f16 kernels; f16 operands take "tiled"`);
  }
  return "tiled";
}

function geometry(
  xShape: readonly number[],
  wShape: readonly number[],
  { stride = 1, padding = 0 }: Conv2dOptions,
): Geometry {
  if (xShape.length !== 4) throw new Error(`conv2d input must be [N, C, H, W], got [${xShape}]`);
  if (wShape.length !== 4 || wShape[2] !== wShape[3]) {
    throw new Error(`conv2d weight must be [Cout, Cin, k, k], got [${wShape}]`);
  }
  if (!Number.isInteger(stride) || stride < 1 || !Number.isInteger(padding) || padding < 0) {
    throw new Error(`conv2d stride ${stride} and padding ${padding} must be integers ≥ 1 and ≥ 0`);
  }
  const [batch, cin, h, w] = xShape;
  const [cout, wcin, k] = wShape;
  if (wcin !== cin) {
    throw new Error(`conv2d weight [${wShape}] does not take ${cin} input channels`);
  }
  const oh = conv2dOutputSize(h, k, stride, padding);
  const ow = conv2dOutputSize(w, k, stride, padding);
  if (oh < 1 || ow < 1) {
    throw new Error(`conv2d kernel ${k} with padding ${padding} does not fit input [${xShape}]`);
  }
  return { batch, cin, h, w, cout, oh, ow, k, stride, padding };
}

function checkGradY(gradY: Tensor, g: Geometry): void {
  const expected = [g.batch, g.cout, g.oh, g.ow];
  if (gradY.shape.join() !== expected.join()) {
    throw new Error(`conv2d output gradient is [${gradY.shape}], expected [${expected}]`);
  }
}

/**
 * The taps of one stride phase of the input gradient along one axis: input positions
 * i ≡ a (mod stride) receive gradient from kernel taps t ≡ (a + padding) (mod stride), and
 * as a stride-1 convolution over the output gradient that is `taps` taps read from tap
 * `first` downwards, with `padding` (possibly negative) and `size` positions.
 */
function phase(a: number, size: number, k: number, s: number, padding: number) {
  const c = (a + padding) % s;
  const taps = c < k ? Math.ceil((k - c) / s) : 0;
  return {
    size: Math.ceil((size - a) / s),
    taps,
    first: c + s * (taps - 1),
    padding: taps - 1 - (a + padding - c) / s,
  };
}

/**
 * Packs the weights and records the convolution of x into y. Taps that no output pixel can
 * see inside the input (a kernel wider than a small image) are dropped first, which turns,
 * say, a 3×3 convolution of 1×1 images into a 1×1 one.
 */
function convolve(
  program: Program,
  variant: Conv2dVariant,
  pass: "forward" | "backward_input",
  x: Tensor,
  weight: Tensor,
  y: Tensor,
  options: Conv2dOptions,
  pack: PackParams,
  at: Placement,
): void {
  const rows = reachable(pack.nu, at.padY, at.outH, at.stride, at.inH);
  const cols = reachable(pack.nv, at.padX, at.outW, at.stride, at.inW);
  const nu = rows.count;
  const nv = cols.count;
  // How w is read, from where its reachable taps start: the packing's parameters.
  const weightReading = [
    pack.colStride,
    pack.rowStride,
    pack.k,
    i32(pack.y0 + rows.first * pack.dy),
    i32(pack.dy),
    i32(pack.x0 + cols.first * pack.dx),
    i32(pack.dx),
  ];
  const padY = at.padY - rows.first;
  const padX = at.padX - cols.first;
  const shape = [
    at.batch,
    pack.reduce,
    at.inH,
    at.inW,
    pack.cols,
    at.outH,
    at.outW,
    nu,
    nv,
    at.stride,
    i32(padY),
    i32(padX),
  ];
  const forward = pass === "forward";
  // The multiply-adds of this convolution (of one phase, for the input gradient), every tap
  // counted as other tools count them, even one that reads only padding.
  const flops = 2 * at.batch * at.outH * at.outW * pack.cols * pack.reduce * pack.nu * pack.nv;
  if (variant === "tiled") {
    // The tiled kernels read w itself through the packing's parameters: no packing pass.
    const kernels = conv2dTiledKernels[precisionOf(x, weight)];
    const sums = forward ? kernels.forward : kernels.backwardInput;
    const read = { shape, weightReading, taps: nu * nv };
    tiledConvolve(program, sums, [x, weight, y], read, pack, at, options, flops);
    return;
  }
  const padded = roundUp(pack.cols, directChannelBlock);
  const params = [...shape, padded, ...placement(at)];
  const packed = program.temp(
    [Math.max(4, pack.reduce * nu * nv * padded)],
    "conv2d packed weights",
  );
  if (nu * nv > 0) {
    program.dispatch(conv2dPackWeightsKernel, [weight, packed], Math.ceil(packed.size / 256), [
      pack.reduce,
      pack.cols,
      padded,
      nu,
      nv,
      ...weightReading,
    ]);
  }
  const columns = Math.ceil(at.outW / 4);
  const channelBlocks = padded / directChannelBlock;
  const is3x3 = nu === 3 && nv === 3 && padY === 1 && padX === 1 && at.stride <= 2;
  if (is3x3 && at.inW % 4 === 0 && at.outW % 4 === 0 && at.stepY === 1 && at.stepX === 1) {
    // The 3×3 kernel reads aligned vec4s of x through a second binding of the same buffer;
    // its tiles are 4×4 pixels of one image.
    const kernel = forward ? conv2dForward3x3Kernel : conv2dBackwardInput3x3Kernel;
    const entryPoint = at.stride === 1 ? "main" : "main_stride2";
    const tiles = at.batch * Math.ceil(at.outH / 4) * columns;
    const grid = [Math.ceil(tiles / 64), channelBlocks] as const;
    program.dispatch({ ...kernel, entryPoint }, [x, x, packed, y], grid, params, flops);
  } else {
    // The general kernel's tiles take 4 of the batch's output rows in order, across images;
    // on maps at most 2 pixels wide, 8 rows of 2 pixels (paired).
    const general = forward ? conv2dForwardKernel : conv2dBackwardInputKernel;
    const paired = at.outW <= 2;
    const kernel = paired ? { ...general, constants: { paired: 1 } } : general;
    const tiles = paired
      ? Math.ceil(at.batch * at.outH / 8)
      : Math.ceil(at.batch * at.outH / 4) * columns;
    program.dispatch(kernel, [x, packed, y], [Math.ceil(tiles / 64), channelBlocks], params, flops);
  }
}

/** conv2d_forward's last parameters: where the output pixels land (see {@link Placement}). */
function placement(at: Placement): number[] {
  return [at.planeH, at.planeW, at.stepY, at.offsetY, at.stepX, at.offsetX];
}

/**
 * Records the tiled kernel of a convolution (or of one phase of an input gradient) of x with
 * the weights w [Cout, Cin, k, k] into y: `read.shape` holds its conv2d_forward parameters
 * before the padded width and the placement (which come from the tile and `at`),
 * `read.weightReading` how it reads w (the packing's parameters), `read.taps` how many of the
 * kernel's taps it sums over. The tile is 128 × 128 on grids large enough (see gemmTile),
 * which then need no split; when the tiles are too few to fill a GPU, the sum over k = (input
 * channel, tap) is split: each split stores its partial outputs densely, in f32 at either
 * precision, and conv2d_split_sum adds them up into the output's placement.
 */
function tiledConvolve(
  program: Program,
  sums: Readonly<Record<TileSide, Conv2dTiledSums>>,
  [x, w, y]: readonly Tensor[],
  read: { shape: readonly number[]; weightReading: readonly number[]; taps: number },
  pack: PackParams,
  at: Placement,
  options: Conv2dOptions,
  flops: number,
): void {
  const { weightReading } = read;
  const pixels = at.batch * at.outH * at.outW;
  const tile = gemmTile(pack.cols, pixels, options.tile);
  const padded = roundUp(pack.cols, tile);
  const shape = [...read.shape, padded];
  // Pixel tiles, and all tiles counted in 64 × 64 tiles' work.
  const pixelTiles = Math.ceil(pixels / tile);
  const tiles = pixelTiles * (padded / tile) * tileArea(tile);
  const kTotal = pack.reduce * read.taps;
  const count = at.batch * pack.cols * at.outH * at.outW;
  const wanted = options.splits ??
    Math.min(
      Math.ceil(tiledTargetWorkgroups / tiles),
      Math.floor(kTotal / 16 / minSlicesPerSplit),
    );
  // A phase that no tap reaches (kTotal 0) stores zeros in one split.
  const { splits, per: perSplit } = kTotal === 0
    ? { splits: 1, per: 16 }
    : split(kTotal, wanted, 16, program.gpu, count);
  // Pixel tiles past the adapter's 65,535 workgroups a dimension (large images) fold into z.
  const layers = Math.ceil(pixelTiles / program.gpu.limits.maxComputeWorkgroupsPerDimension);
  const grid = [Math.ceil(pixelTiles / layers), (padded / tile) * splits, layers] as const;
  if (splits === 1) {
    program.dispatch(
      sums[tile].whole,
      [x, w, y],
      grid,
      [...shape, ...placement(at), perSplit, 0, ...weightReading],
      flops,
    );
    return;
  }
  const parts = program.temp([splits, count], "conv2d partial sums over k");
  // Each split's outputs are dense, [batch, cols, outH, outW]: planes of outH × outW, step 1.
  const dense = {
    ...at,
    planeH: at.outH,
    planeW: at.outW,
    stepY: 1,
    offsetY: 0,
    stepX: 1,
    offsetX: 0,
  };
  const params = [...shape, ...placement(dense), perSplit, count, ...weightReading];
  program.dispatch(sums[tile].parts, [x, w, parts], grid, params, flops);
  program.dispatch(
    inPrecision(conv2dSplitSumKernel, precisionOf(y)),
    [parts, y],
    Math.ceil(count / 256),
    [count, pack.cols, at.outH, at.outW, ...placement(at), splits],
  );
}

/**
 * The taps t of a kernel of `taps` taps (along one axis) that some output position o reads
 * inside the input: 0 ≤ o·stride − padding + t < size.
 */
function reachable(taps: number, padding: number, outSize: number, stride: number, size: number) {
  const first = Math.max(0, padding - (outSize - 1) * stride);
  const last = Math.min(taps - 1, padding + size - 1);
  return { first, count: Math.max(0, last - first + 1) };
}

function weightGradDirect(
  program: Program,
  x: Tensor,
  gradY: Tensor,
  gradWeight: Tensor,
  g: Geometry,
  splitsOverride: number | undefined,
): void {
  const { batch, cin, h, w, cout, oh, ow, k, stride, padding } = g;
  const xRow = Math.ceil(cin / 4);
  const packedX = program.temp([batch * h * w, xRow * 4], "conv2d pixel-major input");
  program.dispatch(
    conv2dPackActivationsKernel,
    [x, packedX],
    Math.ceil(packedX.size / 4 / 256),
    [batch, cin, h * w, xRow * 4],
  );
  const gyChannels = roundUp(cout, 16);
  const packedGy = program.temp([batch * oh * ow, gyChannels], "conv2d pixel-major gradient");
  program.dispatch(
    conv2dPackActivationsKernel,
    [gradY, packedGy],
    Math.ceil(packedGy.size / 4 / 256),
    [batch, cout, oh * ow, gyChannels],
  );
  const entries = xRow * k * k;
  const groups = Math.ceil(entries / 4);
  // The 3×3 kernel covers 4 input channels × 9 taps × 8 output channels per invocation,
  // the general one 4 entries (4 input channels at one tap) × 16 output channels.
  const is3x3 = k === 3 && stride === 1 && padding === 1;
  const lanes = is3x3 ? xRow : groups;
  const blocks = gyChannels / (is3x3 ? 8 : 16);
  const partialSize = gyChannels * groups * 16;
  const { splits, per } = split(
    batch * oh,
    splitsOverride ?? Math.ceil(directTargetLanes / (lanes * blocks)),
    1,
    program.gpu,
    partialSize,
  );
  const out = program.temp([splits, partialSize], "conv2d weight gradient partial sums");
  program.dispatch(
    is3x3 ? conv2dBackwardWeight3x3Kernel : conv2dBackwardWeightKernel,
    [packedX, packedGy, out],
    [Math.ceil((lanes * splits) / 64), blocks],
    [
      batch,
      cin,
      h,
      w,
      cout,
      oh,
      ow,
      k,
      k,
      stride,
      padding,
      padding,
      xRow,
      gyChannels / 4,
      entries,
      groups,
      splits,
      per,
    ],
    weightGradFlops(g),
  );
  reducePartials(program, out, gradWeight, [splits, 1, cin, k * k, gyChannels / 4, groups * 4]);
}

function weightGradTiled(
  program: Program,
  x: Tensor,
  gradY: Tensor,
  gradWeight: Tensor,
  g: Geometry,
  options: Conv2dOptions,
  precision: Precision,
): void {
  const { batch, cin, h, w, cout, oh, ow, k, stride, padding } = g;
  const kTotal = cin * k * k;
  const tile = gemmTile(cout, kTotal, options.tile);
  const kTiles = Math.ceil(kTotal / tile);
  const channelTiles = Math.ceil(cout / tile);
  // In 64 × 64 tiles' work, as tiledConvolve counts them.
  const tiles = kTiles * channelTiles * tileArea(tile);
  const { splits, per } = split(
    batch * oh * ow,
    options.splits ?? Math.ceil(tiledTargetWorkgroups / tiles),
    16,
    program.gpu,
    gradWeight.size,
  );
  const out = program.temp([splits, gradWeight.size], "conv2d weight gradient partial sums");
  program.dispatch(
    conv2dTiledKernels[precision].backwardWeight[tile],
    [x, gradY, out],
    [kTiles, channelTiles, splits],
    [batch, cin, h, w, cout, oh, ow, k, k, stride, padding, padding, per],
    weightGradFlops(g),
  );
  reducePartials(program, out, gradWeight, [splits, 0, cin, k * k, 0, 0]);
}

/** The multiply-adds of a weight gradient: as many as the forward convolution's. */
function weightGradFlops({ batch, cin, cout, oh, ow, k }: Geometry): number {
  return 2 * batch * cout * oh * ow * cin * k * k;
}

/**
 * Splits `length` items of a reduction into about `wanted` parts of a multiple of `unit`
 * items each, keeping the partial sums (`partialSize` values per part) within a binding.
 */
function split(length: number, wanted: number, unit: number, gpu: Gpu, partialSize: number) {
  const bindable = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4 / partialSize);
  const target = Math.max(1, Math.min(wanted, bindable, Math.ceil(length / unit)));
  const per = roundUp(Math.ceil(length / target), unit);
  return { splits: Math.ceil(length / per), per };
}

// Adds the partial sums into the gradient; `params` are conv2d_reduce's after its first.
function reducePartials(program: Program, out: Tensor, gradWeight: Tensor, params: number[]) {
  program.dispatch(conv2dReduceKernel, [out, gradWeight], Math.ceil(gradWeight.size / 256), [
    gradWeight.size,
    ...params,
  ]);
}

// A signed kernel parameter, passed as the u32 with the same bits.
function i32(value: number): number {
  return value >>> 0;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
