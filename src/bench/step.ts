import { augmentPreset } from "../data/augment.ts";
import { syntheticText } from "../data/synthetic_text.ts";
import { packCorpus, TokenWriter } from "../data/text_batcher.ts";
import { tokenizerNamed } from "../data/tokenizer.ts";
import type { Gpu } from "../gpu/gpu.ts";
import { Program } from "../gpu/gpu.ts";
import { type KernelTime, profileProgram } from "../gpu/profile.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  createLossScale,
  createMethodOptimizer,
  createStepInputs,
  recordTrainingStep,
  writeStepInputs,
} from "../methods/method.ts";
import { methodNamed } from "../methods/registry.ts";
import { textEncoderConfig } from "../methods/_text.ts";
import type { BackboneConfig } from "../nn/backbone.ts";
import { noise } from "./conv.ts";

/** The training step to time: a method on a backbone (its text encoder, for text). */
export interface StepBenchOptions {
  readonly method: string;
  /** The method's options beside its defaults. */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly backbone: BackboneConfig;
  /** Images per step; the step sees each image's views. */
  readonly batch: number;
  readonly imageSize?: number;
  readonly seconds?: number;
  /** Also time every kernel of the step with timestamp queries. */
  readonly profile?: boolean;
}

/** What one training step costs and how fast it ran. */
export interface StepFigures {
  /**
   * FLOPs of one step's convolutions and linear layers (forward, backward-input and
   * backward-weight, as the layers count them); batch norm, pooling, losses and the
   * optimizer are memory-bound and left out, as is customary.
   */
  readonly gflopPerStep: number;
  readonly milliseconds: number;
  readonly imagesPerSecond: number;
  readonly gflops: number;
  /** GPU memory the step's buffers take, parameters, method state and optimizer included. */
  readonly megabytes: number;
  readonly dispatches: number;
}

/** A method's training step, and its figures. */
export interface StepBenchResult extends StepFigures {
  readonly method: string;
  readonly batch: number;
  /** Views of each image the step runs. */
  readonly views: number;
  /** Where the step's time goes, by kernel, slowest first (with `profile`). */
  readonly profile?: KernelTime[];
}

/**
 * Times whole training steps of a method (forward, loss, backward, Adam, and whatever the
 * method adds: a key encoder, a moving average, a queue) on random images, each recorded
 * once and submitted as one command buffer, with one sync per timing window.
 */
export async function benchStep(gpu: Gpu, options: StepBenchOptions): Promise<StepBenchResult> {
  const { batch } = options;
  const size = options.imageSize ?? 32;
  const method = methodNamed(options.method);
  const methodOptions = method.validate(options.options ?? {}, batch);
  const backbone = method.backbone?.(methodOptions, options.backbone) ?? options.backbone;
  const groups = method.views(methodOptions, augmentPreset("simclr-seed", size));
  // A text encoder: the backbone, or beside it (CLIP's, as its synthetic recipe has it).
  const encoder = backbone.name === "text"
    ? backbone
    : method.text
    ? method.recipes.synthetic?.text ?? textEncoderConfig("bytes")
    : undefined;
  const text = encoder && method.text?.(methodOptions, encoder);
  const before = gpu.bytesInUse;
  const run = method.build(
    {
      gpu,
      backbone,
      text: encoder,
      batchSize: batch,
      totalSteps: 1_000_000,
      stepsPerEpoch: 1_000,
      seed: 0,
    },
    methodOptions,
  );
  const optimizer = createMethodOptimizer(gpu, run, { name: "adam" });
  const lossScale = createLossScale(gpu, run);
  const program = new Program(gpu, `bench ${method.name} step`);
  try {
    const inputs = createStepInputs(program, { groups, text, batchSize: batch });
    const { loss } = recordTrainingStep(program, run, optimizer, inputs, lossScale);
    for (const v of inputs.views) gpu.write(v, noise(v.size));
    if (text) {
      // Sequences of the synthetic corpus, masked and paired as the method asks.
      const corpus = packCorpus(
        syntheticText({ count: 4 * batch }),
        tokenizerNamed(text.tokenizer),
        text,
      );
      const writer = new TokenWriter(corpus, text, 0);
      const tokens = writer.allocate(batch);
      writer.write(Array.from({ length: batch }, (_, k) => k), 0, tokens);
      writeStepInputs(gpu, inputs, {
        groups: [],
        labels: new Int32Array(batch),
        indices: new Int32Array(batch),
        size: batch,
        epoch: 0,
        step: 0,
        text: tokens,
      });
    }
    const prepare = (t: number) => {
      run.prepare(t);
      optimizer.freeze(run.frozen?.(t) ?? []);
      optimizer.prepare(t + 1, 1e-4);
    };
    const figures = await timeStep(
      gpu,
      program,
      prepare,
      loss,
      {
        images: batch,
        gflop: program.flops / 1e9,
        seconds: options.seconds ?? 5,
        bytesBefore: before,
      },
    );
    return {
      method: method.name,
      batch,
      views: groups.reduce((sum, g) => sum + g.count, 0),
      ...figures,
      profile: options.profile ? await profileProgram(gpu, program, prepare) : undefined,
    };
  } finally {
    program.destroy();
    optimizer.destroy();
    lossScale?.destroy();
    run.destroy();
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
 * Times a recorded training step: two warm-up steps, then windows of steps, each window one
 * sync (reading `readback`), until `seconds` have passed. `prepare(t)` writes the per-step
 * values of the step after t updates.
 */
export async function timeStep(
  gpu: Gpu,
  program: Program,
  prepare: (step: number) => void,
  readback: Tensor,
  counts: StepCounts,
): Promise<StepFigures> {
  let t = 0;
  const run = async (steps: number) => {
    for (let s = 0; s < steps; s++) {
      prepare(t++);
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
