/**
 * Throughput of the matrix kernels on one large square product, N×N by N×N: the yardstick of
 * an adapter's f32 ceiling (the GPU target is stated at N = 4096).
 *
 * @module
 */
import { SelfsupError } from "../errors.ts";
import { type Gpu, Program } from "../gpu/gpu.ts";
import type { TileSide } from "../gpu/kernel.ts";
import { conv2dBackwardWeight, conv2dForward } from "../nn/conv2d.ts";
import { linearForward } from "../nn/linear.ts";
import { noise, timeProgram } from "./conv.ts";

/** The measured speed of one kernel on the N³ product. */
export interface GemmBenchRow {
  /** What ran, e.g. "linear forward (x·Wᵀ + b)". */
  readonly name: string;
  /** N: both matrices are N×N. */
  readonly size: number;
  /** 2·N³ / 10⁹. */
  readonly gflop: number;
  /** Steady-state (median) time of one product, weight packing and reductions included. */
  readonly milliseconds: number;
  readonly gflops: number;
  /** The tiled kernels' output tile, where the row forces it (absent: the layer chooses). */
  readonly tile?: TileSide;
  /** The kernels the product dispatches, in order (which tile the layer chose, for one). */
  readonly kernels: readonly string[];
}

/**
 * Times the product as the layers compute it on this adapter's kernel family: a linear
 * layer's forward pass (x [N, N]·Wᵀ), and a 1×1 convolution of N channels over N pixels (one
 * image of 64 × N/64: the convolution kernels' implicit GEMM), forward and weight gradient;
 * where the adapter has `shader-f16`, also the linear forward pass on f16 operands (the tiled
 * kernels' f16 variant: f16 storage and slice sums, f32 across slices). Then each of these
 * once more on the tiled kernels (on any adapter) with each output tile forced, 64 × 64 and
 * 128 × 128 per workgroup, to compare the tiles on one run.
 * `size` must be a multiple of 64, and an N×N matrix must fit one binding of the adapter.
 */
export async function benchGemm(
  gpu: Gpu,
  { size, seconds }: { size: number; seconds: number },
): Promise<GemmBenchRow[]> {
  if (size % 64 !== 0) throw new SelfsupError(`GEMM size ${size} is not a multiple of 64`);
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (size * size * 4 > limit) {
    const largest = Math.floor(Math.sqrt(limit / 4) / 64) * 64;
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
    throw new SelfsupError(
      `GEMM size ${size}: a ${size}×${size} matrix needs ${mib(size * size * 4)} MiB, more ` +
        `than this adapter can bind (${mib(limit)} MiB); the largest size here is ${largest}`,
    );
  }
  const setup = new Program(gpu, `bench GEMM ${size}`);
  const x = setup.tensor([size, size], "x");
  const weight = setup.tensor([size, size], "weight");
  const bias = setup.tensor([size], "bias");
  const image = setup.tensor([1, size, 64, size / 64], "image");
  const kernel = setup.tensor([size, size, 1, 1], "1×1 kernel");
  const gradY = setup.tensor([1, size, 64, size / 64], "output gradient");
  const gradKernel = setup.tensor([size, size, 1, 1], "kernel gradient");
  for (const t of [x, weight, bias, image, kernel, gradY]) gpu.write(t, noise(t.size));
  type Recorder = (p: Program, tile?: TileSide) => void;
  const linear: Recorder = (p, tile) => void linearForward(p, x, weight, bias, { tile });
  const convolution: Recorder = (p, tile) => void conv2dForward(p, image, kernel, { tile });
  const weightGradient: Recorder = (p, tile) =>
    conv2dBackwardWeight(p, image, gradY, gradKernel, { tile });
  // The products, timed as the layers choose their kernels and then with each tile forced.
  const products: { name: string; tile?: TileSide; record: Recorder }[] = [
    { name: "linear forward (x·Wᵀ + b)", record: linear },
    { name: "1×1 convolution forward", record: convolution },
    { name: "1×1 convolution weight gradient", record: weightGradient },
  ];
  if (gpu.features.has("shader-f16")) {
    const xHalf = setup.tensor([size, size], "x (f16)", "f16");
    const weightHalf = setup.tensor([size, size], "weight (f16)", "f16");
    for (const t of [xHalf, weightHalf]) gpu.write(t, Float16Array.from(noise(t.size)));
    const half: Recorder = (p, tile) => void linearForward(p, xHalf, weightHalf, bias, { tile });
    const f16 = { name: "linear forward, f16 operands", record: half };
    products.push(f16);
  }
  const asChosen = products.slice();
  for (const tile of [64, 128] as const) {
    for (const { name, record } of asChosen) {
      products.push({ name: `${name}, ${tile}×${tile} tiles`, tile, record });
    }
  }
  const gflop = 2 * size ** 3 / 1e9;
  const rows: GemmBenchRow[] = [];
  for (const { name, tile, record } of products) {
    const once = new Program(gpu, `bench GEMM ${name}`);
    record(once, tile);
    const kernels = once.dispatches.map((d) => d.name);
    const milliseconds = await timeProgram(gpu, once, seconds);
    const gflops = gflop / (milliseconds / 1000);
    rows.push({ name, size, gflop, milliseconds, gflops, ...(tile && { tile }), kernels });
    once.destroy();
  }
  setup.destroy();
  return rows;
}
