import {
  assertArchitecture,
  captureCheckpoint,
  type CheckpointMeta,
  loadCheckpoint,
  loadOptimizerState,
  saveCheckpoint,
} from "./checkpoint.ts";
import { augmentPreset, type TrainingRecipe } from "./data/augment.ts";
import { MultiViewLoader } from "./data/batcher.ts";
import {
  type DatasetConfig,
  datasetLabel,
  datasetNormalization,
  loadDataset,
} from "./data/load.ts";
import { SelfsupError } from "./errors.ts";
import {
  checkEvaluationData,
  evaluateBackbone,
  type Evaluation,
  type EvaluationConfig,
} from "./evaluate.ts";
import { createGpu } from "./gpu/device.ts";
import { type Gpu, Program } from "./gpu/gpu.ts";
import { recordLossSum } from "./loss/loss_sum.ts";
import { recordSimclrStep } from "./methods/simclr.ts";
import { modelFromCheckpoint, randomModel } from "./model.ts";
import type { Stem } from "./nn/resnet.ts";
import { createOptimizer, type OptimizerConfig } from "./optim/optimizer.ts";
import { constantLearningRate, learningRate } from "./optim/schedule.ts";
import { renderPlot } from "./plot.ts";
import { progress } from "./progress.ts";
import { RunFolder } from "./run_folder.ts";

/** Everything that defines a pre-training run; saved as the run's `config.json`. */
export interface PretrainConfig {
  readonly method: "simclr";
  readonly dataset: DatasetConfig;
  readonly stem: Stem;
  readonly width: number;
  readonly projectionDim: number;
  readonly temperature: number;
  readonly epochs: number;
  /** Images per step; each contributes two views. */
  readonly batchSize: number;
  readonly optimizer: OptimizerConfig["name"];
  readonly learningRate: number;
  readonly weightDecay: number;
  /** Epochs of linear warm-up (may be fractional); 0 for none. */
  readonly warmupEpochs: number;
  readonly schedule: "cosine" | "constant";
  readonly seed: number;
  /** The recipe of both training views (see `augmentPreset`). */
  readonly augmentation: TrainingRecipe;
  /**
   * The per-channel mean and std that training views and evaluated images are normalised
   * with, recorded in the checkpoint for inference; null: the dataset's statistics
   * (CIFAR-10's, or ImageNet's for an image folder).
   */
  readonly normalization: CheckpointMeta["normalization"] | null;
  /** Augmentation workers; default CPU cores − 1. */
  readonly workers?: number;
  /** Evaluation after training; null skips it. */
  readonly evaluation: EvaluationConfig | null;
  /** Also evaluate a randomly initialised network of the same shape, as the baseline. */
  readonly baseline: boolean;
}

/** How {@link pretrain} runs, beyond what defines the run. */
export interface PretrainOptions {
  /** The run folder. */
  readonly out: string;
  /** Continue the run in `out` from its checkpoint. */
  readonly resume?: boolean;
  readonly gpu?: Gpu;
  /** Aborting stops training after the current step, with a checkpoint saved there. */
  readonly signal?: AbortSignal;
  /** Where progress lines go (default: stderr). */
  readonly log?: (line: string) => void;
}

/** What a run produced; also written as `summary.json`. */
export interface PretrainSummary {
  readonly status: "done" | "interrupted";
  readonly adapter: string;
  readonly epochs: number;
  readonly steps: number;
  /** Steps this call trained: fewer than `steps` when it resumed a run. */
  readonly trained_steps: number;
  /** The last training loss read. */
  readonly loss: number;
  /** Mean training throughput of this call, in images (not views) per second. */
  readonly images_per_second: number;
  /** Seconds this call spent training, evaluation excluded. */
  readonly training_seconds: number;
  /** Seconds of the whole call: training and evaluation. */
  readonly seconds: number;
  readonly checkpoint: string;
  readonly probe?: { readonly top1: number; readonly train_top1: number };
  readonly knn?: { readonly top1: number; readonly k: number };
  readonly baseline?: {
    readonly probe?: { readonly top1: number };
    readonly knn?: { readonly top1: number; readonly k: number };
  };
}

/**
 * Pre-trains a ResNet-18 with SimCLR, checkpointing every epoch into the run folder, then
 * evaluates it with a linear probe and the kNN monitor (and a random-init baseline). The run
 * folder is held for the whole call (a second process is refused), and everything the run
 * needs, the evaluation's data included, is loaded and checked before the first step. A
 * non-finite loss stops the run with a {@link SelfsupError} and keeps the last good
 * checkpoint; an abort saves one at the current step.
 */
export async function pretrain(
  config: PretrainConfig,
  options: PretrainOptions,
): Promise<PretrainSummary> {
  validateConfig(config);
  const log = options.log ?? ((line: string) => console.error(line));
  await using run = await RunFolder.open(options.out, { resume: options.resume ?? false, log });
  const resumed = options.resume ? await loadCheckpoint(run.checkpointPath) : undefined;
  if (resumed?.meta.progress.done && resumed.meta.progress.epoch >= config.epochs) {
    throw new SelfsupError(
      `${options.out} has finished its ${resumed.meta.progress.epoch} epochs: pass a larger ` +
        `--epochs to train on, or evaluate it with deno task probe --checkpoint ${run.checkpointPath}`,
    );
  }
  const gpu = options.gpu ?? await createGpu();
  const train = await loadDataset(config.dataset, "train");
  const test = config.evaluation ? await loadDataset(config.dataset, "test") : undefined;
  if (config.evaluation && test) {
    for (
      const note of checkEvaluationData(
        { train, test },
        config.evaluation,
        datasetLabel(config.dataset),
      )
    ) {
      log(note);
    }
  }
  const { mean, std } = config.normalization ?? datasetNormalization(config.dataset);
  const architecture: CheckpointMeta["architecture"] = {
    method: "simclr",
    backbone: "resnet18",
    stem: config.stem,
    width: config.width,
    projectionDim: config.projectionDim,
    imageSize: train.height,
  };
  if (resumed) assertArchitecture(resumed, architecture, run.checkpointPath);
  const { model, block } = resumed
    ? modelFromCheckpoint(gpu, resumed, run.checkpointPath)
    : randomModel(gpu, architecture, { mean, std }, config.seed);
  const optimizer = createOptimizer(gpu, block, {
    name: config.optimizer,
    weightDecay: config.weightDecay,
  });
  if (resumed) {
    loadOptimizerState(gpu, block, resumed, config.optimizer, optimizer.state, run.checkpointPath);
  }

  const program = new Program(gpu, "simclr training step");
  const views = program.tensor([2 * config.batchSize, 3, train.height, train.width], "views");
  program.clear(block.grads);
  const step = recordSimclrStep(program, model, views, config.temperature);
  optimizer.record(program);
  const lossSum = recordLossSum(program, step.loss);

  const augment = { ...augmentPreset(config.augmentation, train.height, train.width), mean, std };
  const loader = new MultiViewLoader(train, {
    batchSize: config.batchSize,
    seed: config.seed,
    groups: [{ count: 2, augment }],
    workers: config.workers,
  });
  const stepsPerEpoch = loader.batchesPerEpoch;
  const totalSteps = config.epochs * stepsPerEpoch;
  const schedule = {
    base: config.learningRate,
    warmupSteps: Math.round(config.warmupEpochs * stepsPerEpoch),
    totalSteps,
  };
  const rate = (s: number) =>
    config.schedule === "cosine" ? learningRate(s, schedule) : constantLearningRate(s, schedule);

  let position: CheckpointMeta["progress"] = resumed?.meta.progress ??
    { epoch: 0, batch: 0, step: 0, done: false };
  // An epoch's batches are a permutation of all the training images: with another number of
  // them, the run could not go on with the batches it would have had.
  const trainedOn = resumed?.meta.progress.images;
  if (trainedOn !== undefined && trainedOn !== train.length) {
    throw new SelfsupError(
      `${run.checkpointPath} was trained on ${trainedOn} images, but the data now has ` +
        `${train.length}: was the dataset changed?`,
    );
  }
  if (position.batch > stepsPerEpoch) {
    throw new SelfsupError(
      `${run.checkpointPath} stopped at batch ${position.batch} of epoch ${position.epoch + 1}, ` +
        `but the data now makes ${stepsPerEpoch} batches an epoch: was the dataset changed?`,
    );
  }
  const checkpointMeta = (): CheckpointMeta => ({
    architecture,
    normalization: { mean, std },
    progress: { ...position, images: train.length },
    optimizer: config.optimizer,
    config: config as unknown as Record<string, unknown>,
  });
  // The step of the checkpoint on disk, if there is one.
  let savedStep = resumed?.meta.progress.step;
  const save = async () => {
    const checkpoint = await captureCheckpoint(gpu, block, checkpointMeta(), optimizer.state);
    assertFiniteParameters(checkpoint.parameters, position.step, run.checkpointPath, savedStep);
    await saveCheckpoint(run.checkpointPath, checkpoint).catch((error) => {
      throw new SelfsupError(`${error.message}; ${keptState(run.checkpointPath, savedStep)}`);
    });
    savedStep = position.step;
  };

  await run.start();
  // Rewritten on resume too: --epochs may have extended the run.
  await run.writeJson("config.json", config);
  const started = performance.now();
  const firstStep = position.step;
  let trainedImages = 0;
  let trainingSeconds = 0;
  let lastLoss = NaN;
  let interrupted = false;
  try {
    for (let epoch = position.epoch; epoch < config.epochs && !interrupted; epoch++) {
      const bar = progress({
        label: `epoch ${epoch + 1}/${config.epochs}`,
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
          gpu.write(views, batch.groups[0]);
          optimizer.prepare(position.step + 1, rate(position.step));
          gpu.submit(program);
          position = { epoch, batch: batch.step + 1, step: position.step + 1, done: false };
          sinceRead.images += batch.size;
          epochImages += batch.size;
          const last = batch.step === stepsPerEpoch - 1;
          interrupted = options.signal?.aborted ?? false;
          // Reading the loss waits for the GPU, so it is read about once a second.
          if (!last && !interrupted && performance.now() - sinceRead.time < 1000) continue;
          const [[loss], [sum]] = await gpu.read(step.loss, lossSum);
          const now = performance.now();
          if (!Number.isFinite(loss) || !Number.isFinite(sum)) {
            throw new SelfsupError(
              `Loss is ${Number.isFinite(loss) ? sum : loss} by step ${position.step} (epoch ` +
                `${epoch + 1}): stopped; ${keptState(run.checkpointPath, savedStep)}. ` +
                `Try a lower --lr`,
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
            learning_rate: rate(position.step - 1),
            images_per_second: round(imagesPerSecond),
          });
          bar.update(batch.step + 1, {
            loss: loss.toFixed(4),
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
        `epoch ${epoch + 1}/${config.epochs}: mean loss ${epochLoss.toFixed(4)}, ` +
          `${Math.round(epochImages / seconds)} images/s, checkpoint saved`,
      );
    }
  } finally {
    loader.close();
    program.destroy();
    optimizer.destroy();
  }

  let evaluation: Evaluation = {};
  let baseline: Evaluation | undefined;
  if (!interrupted) {
    position = { ...position, done: true };
    await save();
    // Training is saved; an interrupt now only cuts the evaluation short.
    const stopped = () => {
      if (options.signal?.aborted) {
        log(`evaluation skipped: deno task probe --checkpoint ${run.checkpointPath}`);
      }
      return options.signal?.aborted ?? false;
    };
    if (config.evaluation && test && !stopped()) {
      const data = { train, test, mean, std };
      evaluation = await evaluateBackbone(gpu, model.backbone, data, config.evaluation, "trained");
      await logEvaluation(run, "trained", evaluation, log);
      if (config.baseline && !stopped()) {
        const initial = randomModel(gpu, architecture, { mean, std }, config.seed);
        baseline = await evaluateBackbone(
          gpu,
          initial.model.backbone,
          data,
          config.evaluation,
          "random init",
        );
        initial.block.destroy();
        await logEvaluation(run, "random init", baseline, log);
      }
    }
  }
  block.destroy();

  const curve = lossCurve(await run.readMetrics());
  // A call that trained no step (its run had reached --epochs) reports the run's last loss.
  if (Number.isNaN(lastLoss)) lastLoss = curve.at(-1)?.[1] ?? NaN;
  const summary: PretrainSummary = {
    status: interrupted ? "interrupted" : "done",
    adapter: gpu.adapterName,
    epochs: position.epoch,
    steps: position.step,
    trained_steps: position.step - firstStep,
    loss: lastLoss,
    images_per_second: round(trainedImages / Math.max(trainingSeconds, 1e-9)),
    training_seconds: round(trainingSeconds),
    seconds: round((performance.now() - started) / 1000),
    checkpoint: run.checkpointPath,
    probe: evaluation.probe &&
      { top1: evaluation.probe.top1, train_top1: evaluation.probe.trainTop1 },
    knn: evaluation.knn,
    baseline: baseline &&
      { probe: baseline.probe && { top1: baseline.probe.top1 }, knn: baseline.knn },
  };
  await run.writeJson("summary.json", summary);
  await run.writeText(
    "plot.svg",
    renderPlot({
      title:
        `SimCLR ResNet-18 (${config.stem} stem, width ${config.width}) on ${config.dataset.name}`,
      loss: curve,
      accuracies: [
        ...(summary.probe ? [{ label: "probe", value: summary.probe.top1 }] : []),
        ...(summary.knn ? [{ label: "kNN", value: summary.knn.top1 }] : []),
        ...(summary.baseline?.probe
          ? [{ label: "probe, random init", value: summary.baseline.probe.top1 }]
          : []),
        ...(summary.baseline?.knn
          ? [{ label: "kNN, random init", value: summary.baseline.knn.top1 }]
          : []),
      ],
    }),
  );
  return summary;
}

async function logEvaluation(
  run: RunFolder,
  name: string,
  evaluation: Evaluation,
  log: (line: string) => void,
): Promise<void> {
  if (evaluation.probe) {
    await run.appendMetrics({
      type: "probe",
      model: name,
      top1: evaluation.probe.top1,
      train_top1: evaluation.probe.trainTop1,
    });
    log(`${name}: linear probe top-1 ${(100 * evaluation.probe.top1).toFixed(2)}%`);
  }
  if (evaluation.knn) {
    await run.appendMetrics({ type: "knn", model: name, ...evaluation.knn });
    log(`${name}: kNN top-1 ${(100 * evaluation.knn.top1).toFixed(2)}%`);
  }
}

/** Refuses values no run can use, naming the flag. */
function validateConfig(config: PretrainConfig): void {
  const positiveInteger = (value: number, flag: string) => {
    if (!Number.isInteger(value) || value < 1) {
      throw new SelfsupError(`--${flag} must be a whole number ≥ 1, got ${value}`);
    }
  };
  const positive = (value: number, flag: string) => {
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new SelfsupError(`--${flag} must be a number > 0, got ${value}`);
    }
  };
  positiveInteger(config.epochs, "epochs");
  positiveInteger(config.batchSize, "batch-size");
  positiveInteger(config.width, "width");
  positiveInteger(config.projectionDim, "projection-dim");
  positive(config.temperature, "temperature");
  positive(config.learningRate, "lr");
  if (!(config.weightDecay >= 0)) {
    throw new SelfsupError(`--weight-decay must be ≥ 0, got ${config.weightDecay}`);
  }
  if (!(config.warmupEpochs >= 0) || config.warmupEpochs > config.epochs) {
    throw new SelfsupError(
      `--warmup-epochs must be between 0 and --epochs, got ${config.warmupEpochs}`,
    );
  }
  if (config.augmentation !== "simclr-seed" && config.augmentation !== "seed") {
    throw new SelfsupError(
      `augmentation must be simclr-seed or seed, got ${String(config.augmentation)}`,
    );
  }
  const norm = config.normalization;
  const threeAbove = (values: readonly number[], bound: number) =>
    values.length === 3 && values.every((v) => Number.isFinite(v) && v > bound);
  if (norm && !(threeAbove(norm.mean, -Infinity) && threeAbove(norm.std, 0))) {
    throw new SelfsupError(
      `normalization needs three finite means and three stds > 0, got ${
        JSON.stringify(config.normalization)
      }`,
    );
  }
  if (config.batchSize < 2) {
    throw new SelfsupError("--batch-size must be at least 2: NT-Xent needs negatives");
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** What a stopped run still has on disk. */
function keptState(checkpointPath: string, savedStep: number | undefined): string {
  return savedStep === undefined
    ? "no checkpoint was saved yet, so the run cannot be resumed"
    : `${checkpointPath} keeps the last good state (step ${savedStep})`;
}

/**
 * Refuses to save parameters that are no longer finite (an update can overflow after the
 * last loss read was finite), so a checkpoint on disk is always a good state.
 */
function assertFiniteParameters(
  parameters: ReadonlyMap<string, Float32Array>,
  step: number,
  checkpointPath: string,
  savedStep: number | undefined,
): void {
  for (const [name, values] of parameters) {
    for (let i = 0; i < values.length; i++) {
      if (Number.isFinite(values[i])) continue;
      throw new SelfsupError(
        `Parameter ${name} is ${values[i]} at step ${step}: stopped; ` +
          `${keptState(checkpointPath, savedStep)}. Try a lower --lr`,
      );
    }
  }
}

/**
 * The loss curve of the whole run from its metrics log, over all its sessions: where a
 * resumed run trained a step again (the first session died after its checkpoint), the later
 * record counts.
 */
function lossCurve(records: readonly Record<string, unknown>[]): [number, number][] {
  const byStep = new Map<number, number>();
  for (const record of records) {
    if (record.type === "step" && typeof record.step === "number") {
      byStep.set(record.step, Number(record.loss));
    }
  }
  return [...byStep].sort(([a], [b]) => a - b);
}
