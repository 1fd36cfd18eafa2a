/**
 * The training loop every task shares (pre-training with any method, fine-tuning): it
 * records one step — the method's forward and backward, the optimizer, what follows the
 * update, the loss sum and the collapse monitor — as one program, feeds it batches epoch by
 * epoch, reads the loss about once a second, checkpoints every epoch and on interrupts, and
 * stops with one line on a non-finite loss or a collapse, keeping the last good checkpoint.
 *
 * @module
 */
import {
  captureCheckpoint,
  type Checkpoint,
  type CheckpointContents,
  type CheckpointMeta,
  loadOptimizerState,
  restoreContents,
  saveCheckpoint,
} from "./checkpoint.ts";
import type { TrainingLoader } from "./data/batcher.ts";
import type { TextViews } from "./data/text_batcher.ts";
import type { ViewGroup } from "./data/views.ts";
import { SelfsupError } from "./errors.ts";
import { type Gpu, Program } from "./gpu/gpu.ts";
import type { Tensor } from "./gpu/tensor.ts";
import { recordLossSum } from "./loss/loss_sum.ts";
import {
  createStepInputs,
  type MethodRun,
  recordTrainingStep,
  writeStepInputs,
} from "./methods/method.ts";
import { isCollapsed, recordSpread } from "./monitor.ts";
import { ParameterBlock } from "./nn/parameters.ts";
import type { LossScale } from "./optim/loss_scale.ts";
import type { Optimizer } from "./optim/optimizer.ts";
import { type BackboneConfig, checkBackbone } from "./nn/backbone.ts";
import { constantLearningRate, learningRate } from "./optim/schedule.ts";
import { progress } from "./progress.ts";
import type { RunFolder } from "./run_folder.ts";

/** Where training stands, as checkpoints record it. */
export type Progress = CheckpointMeta["progress"];

/** What the loop trains and how. */
export interface TrainingSetup {
  readonly gpu: Gpu;
  readonly run: RunFolder;
  readonly method: MethodRun;
  readonly optimizer: Optimizer;
  /** The loss scale of a backbone that trains in f16 (see LossScale). */
  readonly lossScale?: LossScale;
  readonly loader: TrainingLoader;
  readonly groups: readonly ViewGroup[];
  /** The token sequences of each item, for a method that reads text. */
  readonly text?: TextViews;
  readonly batchSize: number;
  readonly epochs: number;
  /** The learning rate of the step after `step` updates. */
  readonly learningRate: (step: number) => number;
  /** The checkpoint's metadata at a position. */
  readonly meta: (position: Progress) => CheckpointMeta;
  /** Where to start: the resumed checkpoint's position, or the beginning. */
  readonly start: Progress;
  /** The step of the checkpoint already on disk, if any. */
  readonly savedStep?: number;
  /** Aborting stops training after the current step, with a checkpoint saved there. */
  readonly signal?: AbortSignal;
  readonly log: (line: string) => void;
}

/** How a call of {@link trainEpochs} ended. */
export interface TrainingOutcome {
  readonly interrupted: boolean;
  readonly position: Progress;
  /** The step the call started from. */
  readonly firstStep: number;
  /** The last training loss read (NaN when no step ran). */
  readonly lastLoss: number;
  readonly trainedImages: number;
  readonly trainingSeconds: number;
}

/** A run to train in its folder: {@link trainRun} restores, starts and trains it. */
export interface RunSpec {
  readonly gpu: Gpu;
  readonly run: RunFolder;
  /** The checkpoint being resumed, if any. */
  readonly resumed?: Checkpoint;
  readonly method: MethodRun;
  readonly optimizer: Optimizer;
  /** The loss scale of a backbone that trains in f16 (see LossScale). */
  readonly lossScale?: LossScale;
  readonly loader: TrainingLoader;
  readonly groups: readonly ViewGroup[];
  readonly text?: TextViews;
  /** The run's configuration: its training settings, and the record for config.json. */
  readonly config: TrainingSettings & { readonly optimizer: string };
  readonly architecture: CheckpointMeta["architecture"];
  readonly normalization: CheckpointMeta["normalization"];
  /** Training images: checked against a resumed run's. */
  readonly images: number;
  readonly signal?: AbortSignal;
  readonly log: (line: string) => void;
}

/**
 * Restores a resumed run (every block, tensor and optimizer state) and checks that its data
 * is unchanged, starts the run folder (writing config.json, again on resume: --epochs may
 * have extended the run) and trains to the configured number of epochs.
 */
export async function trainRun(spec: RunSpec): Promise<TrainingOutcome> {
  const { gpu, run, resumed, method, optimizer, lossScale, config } = spec;
  if (resumed) {
    const contents = checkpointContents(method, optimizer, lossScale);
    restoreContents(gpu, resumed, contents, run.checkpointPath);
    loadOptimizerState(
      gpu,
      method.trainable,
      resumed,
      config.optimizer,
      optimizer.state,
      run.checkpointPath,
    );
  }
  const stepsPerEpoch = spec.loader.batchesPerEpoch;
  const start = startingPosition(resumed, spec.images, stepsPerEpoch, run.checkpointPath);
  await run.start();
  await run.writeJson("config.json", config);
  return await trainEpochs({
    gpu,
    run,
    method,
    optimizer,
    lossScale,
    loader: spec.loader,
    groups: spec.groups,
    text: spec.text,
    batchSize: config.batchSize,
    epochs: config.epochs,
    learningRate: learningRateSchedule(config, stepsPerEpoch),
    meta: (progress) => ({
      architecture: spec.architecture,
      normalization: spec.normalization,
      progress: { ...progress, images: spec.images },
      optimizer: config.optimizer,
      config: config as unknown as Record<string, unknown>,
    }),
    start,
    savedStep: resumed?.meta.progress.step,
    signal: spec.signal,
    log: spec.log,
  });
}

/**
 * The loss scale below which an f16 run stops: from 2¹⁶, 40 more halvings (overflows) than
 * doublings (2,000 good steps in a row each).
 */
const minLossScale = 2 ** -24;

/** Reads of a collapsed spread in a row that stop a run: one could be a passing dip. */
const collapsedReads = 2;

/**
 * Trains from `setup.start` to `setup.epochs`, checkpointing every epoch, and, when not
 * interrupted, saves the final checkpoint marked done.
 */
export async function trainEpochs(setup: TrainingSetup): Promise<TrainingOutcome> {
  const { gpu, run, method, optimizer, lossScale, loader, log } = setup;
  const program = new Program(gpu, "training step");
  const inputs = createStepInputs(program, {
    groups: setup.groups,
    text: setup.text,
    batchSize: setup.batchSize,
  });
  const step = recordTrainingStep(program, method, optimizer, inputs, lossScale);
  const lossSum = recordLossSum(program, step.loss);
  const spread = recordSpread(program, step.embeddings);
  const dimensions = step.embeddings.shape[1];

  const contents = checkpointContents(method, optimizer, lossScale);
  let savedStep = setup.savedStep;
  let position = setup.start;
  const save = async () => {
    const checkpoint = await captureCheckpoint(gpu, contents, setup.meta(position));
    assertFinite(checkpoint, position.step, run.checkpointPath, savedStep);
    await saveCheckpoint(run.checkpointPath, checkpoint).catch((error) => {
      throw new SelfsupError(`${error.message}; ${keptState(run.checkpointPath, savedStep)}`);
    });
    savedStep = position.step;
  };

  const stepsPerEpoch = loader.batchesPerEpoch;
  const firstStep = position.step;
  let trainedImages = 0;
  let trainingSeconds = 0;
  let lastLoss = NaN;
  let collapsed = 0;
  let interrupted = false;
  try {
    for (let epoch = position.epoch; epoch < setup.epochs && !interrupted; epoch++) {
      const bar = progress({
        label: `epoch ${epoch + 1}/${setup.epochs}`,
        total: stepsPerEpoch,
        unit: "steps",
      });
      const epochStart = performance.now();
      let sinceRead = { time: epochStart, images: 0 };
      let epochImages = 0;
      const first = epoch === position.epoch ? position.batch : 0;
      // The loss of every step adds to a sum on the GPU, read with the loss.
      const carried = first > 0 ? position.lossSum : 0;
      const summedSteps = stepsPerEpoch - (carried === undefined ? first : 0);
      gpu.write(lossSum, Float32Array.of(carried ?? 0));
      let epochLossSum = NaN;
      try {
        for await (const batch of loader.epoch(epoch, first)) {
          writeStepInputs(gpu, inputs, batch);
          method.prepare(position.step);
          optimizer.freeze(method.frozen?.(position.step) ?? []);
          optimizer.prepare(position.step + 1, setup.learningRate(position.step));
          gpu.submit(program);
          position = { epoch, batch: batch.step + 1, step: position.step + 1, done: false };
          sinceRead.images += batch.size;
          epochImages += batch.size;
          const last = batch.step === stepsPerEpoch - 1;
          interrupted = setup.signal?.aborted ?? false;
          // Reading the loss waits for the GPU, so it is read about once a second.
          if (!last && !interrupted && performance.now() - sinceRead.time < 1000) continue;
          const [[loss], [sum], [std], scale] = await gpu.read(
            step.loss,
            lossSum,
            spread,
            ...(lossScale ? [lossScale.scale] : []),
          );
          const now = performance.now();
          // In f16 an overflowing forward pass makes the loss inf (the update was skipped).
          const f16Hint = lossScale ? " or train in f32 (without --precision f16)" : "";
          if (!Number.isFinite(loss) || !Number.isFinite(sum)) {
            throw new SelfsupError(
              `Loss is ${Number.isFinite(loss) ? sum : loss} by step ${position.step} (epoch ` +
                `${epoch + 1}): stopped; ${keptState(run.checkpointPath, savedStep)}. ` +
                `Try a lower --lr${f16Hint}`,
            );
          }
          // Every overflow halves the scale: one this small means that the steps have been
          // skipped for a long while, and would be for ever.
          if (scale && !(scale[0] >= minLossScale)) {
            throw new SelfsupError(
              `Every step overflows in f16 (the loss scale fell to ${scale[0]} by step ` +
                `${position.step}): stopped; ${keptState(run.checkpointPath, savedStep)}. ` +
                `Try a lower --lr${f16Hint}`,
            );
          }
          collapsed = isCollapsed(std, dimensions) ? collapsed + 1 : 0;
          // A loss pinned at the value of uniform predictions (SwAV's and DINO's ln K) for a
          // whole epoch past the first is a collapse too, whatever the spread says. A run
          // that learns passes through ln K on its way down, so one read there is not enough:
          // the epoch's mean and its last read must both sit there, within 0.01% (a stuck
          // loss has no gradient to move it; runs that learn spend epochs within 0.1%).
          const stuck = last && epoch > 0 && method.collapseLoss !== undefined &&
            [loss, sum / summedSteps].every((value) =>
              Math.abs(value - method.collapseLoss!) < 1e-4 * method.collapseLoss!
            );
          if (collapsed >= collapsedReads || stuck) {
            const why = stuck
              ? `the loss is stuck at ${loss.toFixed(4)}, the value of uniform predictions, ` +
                `for the whole epoch`
              : `their spread is ${std.toPrecision(2)}, healthy is about 1/√${dimensions} = ` +
                `${(1 / Math.sqrt(dimensions)).toPrecision(2)}`;
            throw new SelfsupError(
              `The embeddings collapsed by step ${position.step} (epoch ${epoch + 1}): ${why}; ` +
                `stopped; ${keptState(run.checkpointPath, savedStep)}. ` +
                (method.collapseHint ?? "Try a lower --lr or other options"),
            );
          }
          const imagesPerSecond = sinceRead.images / ((now - sinceRead.time) / 1000);
          lastLoss = loss;
          epochLossSum = sum;
          position = { ...position, lossSum: sum };
          await run.appendMetrics({
            type: "step",
            epoch: epoch + 1,
            step: position.step,
            loss,
            embedding_std: std,
            learning_rate: setup.learningRate(position.step - 1),
            images_per_second: round(imagesPerSecond),
            ...(scale ? { loss_scale: scale[0] } : {}),
          });
          bar.update(batch.step + 1, {
            loss: loss.toFixed(4),
            std: std.toFixed(3),
            "img/s": Math.round(imagesPerSecond),
          });
          sinceRead = { time: now, images: 0 };
          if (interrupted) break;
        }
      } finally {
        bar.stop();
      }
      const seconds = (performance.now() - epochStart) / 1000;
      trainedImages += epochImages;
      trainingSeconds += seconds;
      // An epoch interrupted after its last batch is complete.
      const complete = position.batch === stepsPerEpoch;
      if (complete) position = { epoch: epoch + 1, batch: 0, step: position.step, done: false };
      await save();
      if (!complete) {
        log(`stopped at step ${position.step} (epoch ${epoch + 1}): checkpoint saved`);
        continue;
      }
      const epochLoss = epochLossSum / summedSteps;
      await run.appendMetrics({
        type: "epoch",
        epoch: epoch + 1,
        loss: epochLoss,
        images_per_second: round(epochImages / seconds),
        seconds: round(seconds),
      });
      log(
        `epoch ${epoch + 1}/${setup.epochs}: mean loss ${epochLoss.toFixed(4)}, ` +
          `${Math.round(epochImages / seconds)} images/s, checkpoint saved`,
      );
    }
    if (!interrupted) {
      position = { ...position, done: true };
      await save();
    }
  } finally {
    program.destroy();
  }
  return { interrupted, position, firstStep, lastLoss, trainedImages, trainingSeconds };
}

/**
 * What a run's checkpoint holds: the trained block, the method's state, the optimizer's, and
 * the loss scale's, if any.
 */
export function checkpointContents(
  method: MethodRun,
  optimizer: Optimizer,
  lossScale?: LossScale,
): CheckpointContents {
  const blocks = new Map<string, ParameterBlock>([["", method.trainable]]);
  const tensors = new Map<string, Tensor>(lossScale?.state);
  for (const [name, value] of method.state) {
    if (value instanceof ParameterBlock) blocks.set(name, value);
    else tensors.set(name, value);
  }
  return { blocks, tensors, optimizerState: optimizer.state };
}

/** What a stopped run still has on disk. */
export function keptState(checkpointPath: string, savedStep: number | undefined): string {
  return savedStep === undefined
    ? "no checkpoint was saved yet, so the run cannot be resumed"
    : `${checkpointPath} keeps the last good state (step ${savedStep})`;
}

/**
 * Refuses to save values that are no longer finite (an update can overflow after the last
 * loss read was finite), so a checkpoint on disk is always a good state.
 */
function assertFinite(
  checkpoint: Checkpoint,
  step: number,
  checkpointPath: string,
  savedStep: number | undefined,
): void {
  for (const [name, values] of checkpoint.tensors) {
    for (let i = 0; i < values.length; i++) {
      if (Number.isFinite(values[i])) continue;
      throw new SelfsupError(
        `Parameter ${name} is ${values[i]} at step ${step}: stopped; ` +
          `${keptState(checkpointPath, savedStep)}. Try a lower --lr`,
      );
    }
  }
}

/** The settings of the learning rate and the batches that every training run has. */
export interface TrainingSettings {
  readonly epochs: number;
  /** Images per step. */
  readonly batchSize: number;
  readonly learningRate: number;
  readonly weightDecay: number;
  /** Epochs of linear warm-up (may be fractional); 0 for none. */
  readonly warmupEpochs: number;
  readonly schedule: "cosine" | "constant";
  readonly backbone: BackboneConfig;
}

/** Refuses training settings no run can use, naming the flag. */
export function checkTraining(config: TrainingSettings): void {
  const positiveInteger = (value: number, flag: string) => {
    if (!Number.isInteger(value) || value < 1) {
      throw new SelfsupError(`--${flag} must be a whole number ≥ 1, got ${value}`);
    }
  };
  positiveInteger(config.epochs, "epochs");
  positiveInteger(config.batchSize, "batch-size");
  checkBackbone(config.backbone, "the configuration");
  if (!(config.learningRate > 0) || !Number.isFinite(config.learningRate)) {
    throw new SelfsupError(`--lr must be a number > 0, got ${config.learningRate}`);
  }
  if (!(config.weightDecay >= 0)) {
    throw new SelfsupError(`--weight-decay must be ≥ 0, got ${config.weightDecay}`);
  }
  if (!(config.warmupEpochs >= 0) || config.warmupEpochs > config.epochs) {
    throw new SelfsupError(
      `--warmup-epochs must be between 0 and --epochs, got ${config.warmupEpochs}`,
    );
  }
  if (config.schedule !== "cosine" && config.schedule !== "constant") {
    throw new SelfsupError(`--schedule must be cosine or constant, got ${config.schedule}`);
  }
  if (config.batchSize < 2) {
    throw new SelfsupError("--batch-size must be at least 2: batch statistics need two images");
  }
}

/** The learning rate of each step: linear warm-up, then cosine decay or constant. */
export function learningRateSchedule(
  config: TrainingSettings,
  stepsPerEpoch: number,
): (step: number) => number {
  const schedule = {
    base: config.learningRate,
    warmupSteps: Math.round(config.warmupEpochs * stepsPerEpoch),
    totalSteps: config.epochs * stepsPerEpoch,
  };
  return (step) =>
    config.schedule === "cosine"
      ? learningRate(step, schedule)
      : constantLearningRate(step, schedule);
}

/**
 * Where a run starts: the beginning, or a resumed checkpoint's position — refused when the
 * data has changed under it, since an epoch's batches are a permutation of all the training
 * images and the run could not go on with the batches it would have had.
 */
export function startingPosition(
  resumed: Checkpoint | undefined,
  images: number,
  stepsPerEpoch: number,
  checkpointPath: string,
): Progress {
  const start = resumed?.meta.progress ?? { epoch: 0, batch: 0, step: 0, done: false };
  const trainedOn = resumed?.meta.progress.images;
  if (trainedOn !== undefined && trainedOn !== images) {
    throw new SelfsupError(
      `${checkpointPath} was trained on ${trainedOn} images, but the data now has ` +
        `${images}: was the dataset changed?`,
    );
  }
  if (start.batch > stepsPerEpoch) {
    throw new SelfsupError(
      `${checkpointPath} stopped at batch ${start.batch} of epoch ${start.epoch + 1}, ` +
        `but the data now makes ${stepsPerEpoch} batches an epoch: was the dataset changed?`,
    );
  }
  return start;
}

/** Two decimals, for figures in logs and summaries. */
export function round(value: number): number {
  return Math.round(value * 100) / 100;
}
