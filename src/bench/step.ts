import { type Gpu, Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { conv2dOutputSize } from "../nn/conv2d.ts";
import { noise, resnet18Shapes } from "./conv.ts";
import { recordSimclrStep } from "../methods/simclr.ts";
import { randomModel } from "../model.ts";
import type { Stem } from "../nn/resnet.ts";
import { createOptimizer, type Optimizer } from "../optim/optimizer.ts";

/** The SimCLR step to time. */
export interface StepBenchOptions {
  readonly stem: Stem;
  readonly width: number;
  /** Images per step; the step sees twice as many views. */
  readonly batch: number;
  readonly imageSize?: number;
  readonly seconds?: number;
}

/** What one training step costs and how fast it ran. */
export interface StepFigures {
  /** Floating-point operations of one step: forward, backward and the optimizer's are ignored. */
  readonly gflopPerStep: number;
  readonly milliseconds: number;
  readonly imagesPerSecond: number;
  readonly gflops: number;
  /** GPU memory the step's buffers take, parameters and optimizer state included. */
  readonly megabytes: number;
  readonly dispatches: number;
}

/** What one SimCLR training step costs and how fast it ran. */
export interface StepBenchResult extends StepFigures {
  readonly stem: Stem;
  readonly width: number;
  readonly batch: number;
}

/**
 * Times whole SimCLR steps (forward, NT-Xent, backward, Adam) on random images, each
 * recorded once and submitted as one command buffer, with one sync per timing window.
 */
export async function benchStep(gpu: Gpu, options: StepBenchOptions): Promise<StepBenchResult> {
  const { stem, width, batch } = options;
  const size = options.imageSize ?? 32;
  const before = gpu.bytesInUse;
  const { model, block } = randomModel(
    gpu,
    {
      method: "simclr",
      backbone: "resnet18",
      stem,
      width,
      projectionDim: 128,
      imageSize: size,
    },
    { mean: [0, 0, 0], std: [1, 1, 1] },
    0,
  );
  const optimizer = createOptimizer(gpu, block, { name: "adam" });
  const program = new Program(gpu, "bench simclr step");
  try {
    const views = program.tensor([2 * batch, 3, size, size], "views");
    program.clear(block.grads);
    const step = recordSimclrStep(program, model, views, 0.5);
    optimizer.record(program);
    gpu.write(views, noise(views.size));
    const figures = await timeStep(gpu, program, optimizer, step.loss, {
      images: batch,
      gflop: simclrStepFlops(stem, width, batch, size) / 1e9,
      seconds: options.seconds ?? 5,
      bytesBefore: before,
    });
    return { stem, width, batch, ...figures };
  } finally {
    program.destroy();
    optimizer.destroy();
    block.destroy();
  }
}

/** What {@link timeStep} needs to turn a time into figures. */
export interface StepCounts {
  /** Images the step trains on. */
  readonly images: number;
  readonly gflop: number;
  readonly seconds: number;
  /** {@link Gpu.bytesInUse} before the step's model, optimizer and program were made. */
  readonly bytesBefore: number;
}

/**
 * Times a recorded training step with its optimizer: two warm-up steps, then windows of
 * steps, each window one sync (reading `readback`), until `seconds` have passed.
 */
export async function timeStep(
  gpu: Gpu,
  program: Program,
  optimizer: Optimizer,
  readback: Tensor,
  counts: StepCounts,
): Promise<StepFigures> {
  let t = 0;
  const run = async (steps: number) => {
    for (let s = 0; s < steps; s++) {
      optimizer.prepare(++t, 1e-4);
      gpu.submit(program);
    }
    await gpu.readF32(readback);
  };
  await run(2);
  const budget = counts.seconds * 1000;
  let steps = 0;
  let elapsed = 0;
  let window = 1;
  while (elapsed < budget) {
    const start = performance.now();
    await run(window);
    elapsed += performance.now() - start;
    steps += window;
    // Longer windows amortise the sync once a step's cost is known.
    window = Math.max(1, Math.min(50, Math.floor((budget - elapsed) / (elapsed / steps) / 2)));
  }
  const milliseconds = elapsed / steps;
  return {
    gflopPerStep: counts.gflop,
    milliseconds,
    imagesPerSecond: counts.images / (milliseconds / 1000),
    gflops: counts.gflop / (milliseconds / 1000),
    megabytes: (gpu.bytesInUse - counts.bytesBefore) / 2 ** 20,
    dispatches: program.dispatchCount,
  };
}

/**
 * Multiply-add FLOPs (2 per MAC) of the convolutions and linear layers of one SimCLR step
 * on 2·batch views: forward, plus backward-input (skipped for the first convolution) and
 * backward-weight, each as costly as the forward. Batch norm, pooling and the loss are
 * memory-bound and left out, as is customary.
 */
export function simclrStepFlops(stem: Stem, width: number, batch: number, size: number): number {
  const n = 2 * batch;
  let flops = 0;
  for (const s of resnet18Shapes({ stem, width, batch: n, imageSize: size })) {
    const out = conv2dOutputSize(s.size, s.k, s.stride, s.padding);
    const forward = 2 * n * s.cout * out * out * s.cin * s.k * s.k;
    flops += s.count * forward * (s.name.startsWith("conv1") ? 2 : 3);
  }
  const features = 8 * width;
  flops += 3 * 2 * n * features * features + 3 * 2 * n * features * 128;
  return flops;
}
