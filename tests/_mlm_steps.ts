// Masked language modelling stepped from the deterministic initial values the PyTorch
// fixtures use, with its recipe's optimizer (AdamW, weight decay on weights, warm-up and
// cosine): for mlm_test's comparison of several steps with PyTorch and for
// tests/fixtures/replica_mlm_steps.ts.
import type { Gpu } from "../src/gpu/gpu.ts";
import { Program } from "../src/gpu/gpu.ts";
import { textEncoderConfig, type TextEncoderShape } from "../src/methods/_text.ts";
import {
  createMethodOptimizer,
  createStepInputs,
  type MethodRun,
  writeStepInputs,
} from "../src/methods/method.ts";
import { mlm } from "../src/methods/mlm.ts";
import { learningRate } from "../src/optim/schedule.ts";
import { initialize } from "./_method_step.ts";

/** A run of MLM steps: the batches as the fixtures store them, flat over steps. */
export interface MlmSteps {
  readonly shape: TextEncoderShape;
  readonly batchSize: number;
  /** [steps, B, T] token ids, [steps, B, P] chosen positions and their targets (−1: none). */
  readonly tokens: ArrayLike<number>;
  readonly positions: ArrayLike<number>;
  readonly targets: ArrayLike<number>;
  /** Steps to take, of the schedule's `totalSteps`. */
  readonly steps: number;
  readonly totalSteps: number;
  readonly warmupSteps: number;
  readonly lr: number;
  readonly betas: [number, number];
  readonly weightDecay: number;
}

/**
 * Takes the steps on a byte-level encoder of `shape`, calling `each` with every step's loss;
 * returns the run (its parameters after the last step), to be destroyed by the caller.
 */
export async function mlmSteps(
  gpu: Gpu,
  config: MlmSteps,
  each: (step: number, loss: number) => void,
): Promise<MethodRun> {
  const b = config.batchSize, t = config.shape.contextLength;
  const p = config.positions.length / (config.tokens.length / t);
  const options = mlm.validate({ maskRatio: 0.15, masking: "dynamic", nsp: false }, b);
  const encoder = textEncoderConfig("bytes", config.shape);
  const run = mlm.build({
    gpu,
    backbone: mlm.backbone!(options, encoder),
    batchSize: b,
    totalSteps: config.totalSteps,
    stepsPerEpoch: config.totalSteps,
    seed: 0,
  }, options);
  initialize(run.trainable, [
    { strip: "backbone.", take: (n) => n.startsWith("backbone.") },
    { strip: "", take: (n) => !n.startsWith("backbone.") },
  ]);
  const optimizer = createMethodOptimizer(gpu, run, {
    name: "adamw",
    betas: config.betas,
    weightDecay: config.weightDecay,
    excludeBiasAndNorm: true,
  });
  const program = new Program(gpu, "MLM steps");
  const inputs = createStepInputs(program, {
    groups: [],
    text: mlm.text!(options, encoder),
    batchSize: b,
  });
  program.clear(run.trainable.grads);
  const { loss } = run.record(program, inputs);
  optimizer.record(program);
  const slice = (values: ArrayLike<number>, s: number, n: number) =>
    Array.prototype.slice.call(values, s * n, (s + 1) * n) as number[];
  const schedule = {
    base: config.lr,
    warmupSteps: config.warmupSteps,
    totalSteps: config.totalSteps,
  };
  for (let s = 0; s < config.steps; s++) {
    writeStepInputs(gpu, inputs, {
      groups: [],
      labels: new Int32Array(b),
      indices: new Int32Array(b),
      size: b,
      epoch: 0,
      step: s,
      text: {
        tokens: Uint32Array.from(slice(config.tokens, s, b * t)),
        positions: Uint32Array.from(slice(config.positions, s, b * p)),
        targets: Int32Array.from(slice(config.targets, s, b * p)),
        segments: new Uint32Array(b * t),
        isNext: new Int32Array(b),
      },
    });
    run.prepare(s);
    optimizer.prepare(s + 1, learningRate(s, schedule));
    gpu.submit(program);
    each(s, (await gpu.readF32(loss))[0]);
  }
  program.destroy();
  optimizer.destroy();
  return run;
}
