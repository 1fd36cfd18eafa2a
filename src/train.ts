import {
  assertArchitecture,
  captureCheckpoint,
  type CheckpointMeta,
  loadCheckpoint,
  loadOptimizerState,
  saveCheckpoint,
} from "./checkpoint.ts";
import { augmentPreset } from "./data/augment.ts";
import { TwoViewLoader } from "./data/batcher.ts";
import { type DatasetConfig, datasetNormalization, loadDataset } from "./data/load.ts";
import { SelfsupError } from "./errors.ts";
import { evaluateBackbone, type Evaluation, type EvaluationConfig } from "./evaluate.ts";
import { createGpu } from "./gpu/device.ts";
import { type Gpu, Program } from "./gpu/gpu.ts";
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
  /** The last training loss read. */
  readonly loss: number;
  /** Mean training throughput over the run, in images (not views) per second. */
  readonly images_per_second: number;
  readonly seconds: number;
  readonly checkpoint: string;
  readonly probe?: { readonly top1: number; readonly train_top1: number };
  readonly knn?: { readonly top1: number };
  readonly baseline?: {
    readonly probe?: { readonly top1: number };
    readonly knn?: { readonly top1: number };
  };
}

/**
 * Pre-trains a ResNet-18 with SimCLR, checkpointing every epoch into the run folder, then
 * evaluates it with a linear probe and the kNN monitor (and a random-init baseline). A
 * non-finite loss stops the run with a {@link SelfsupError} and keeps the last good
 * checkpoint; an abort saves one at the current step.
 */
export async function pretrain(
  config: PretrainConfig,
  options: PretrainOptions,
): Promise<PretrainSummary> {
  validateConfig(config);
  const log = options.log ?? ((line: string) => console.error(line));
  const run = await RunFolder.open(options.out, { resume: options.resume ?? false });
  const resumed = options.resume ? await loadCheckpoint(run.checkpointPath) : undefined;
  if (resumed?.meta.progress.done && resumed.meta.progress.epoch >= config.epochs) {
    throw new SelfsupError(
      `${options.out} has finished its ${resumed.meta.progress.epoch} epochs: pass a larger ` +
        `--epochs to train on, or evaluate it with deno task probe --checkpoint ${run.checkpointPath}`,
    );
  }
  const gpu = options.gpu ?? await createGpu();
  const train = await loadDataset(config.dataset, "train");
  const { mean, std } = datasetNormalization(config.dataset);
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

  const loader = new TwoViewLoader(train, {
    batchSize: config.batchSize,
    seed: config.seed,
    augment: { ...augmentPreset("simclr-seed", train.height, train.width), mean, std },
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

  let position = resumed?.meta.progress ?? { epoch: 0, batch: 0, step: 0, done: false };
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
  const save = async () => {
    const checkpoint = await captureCheckpoint(gpu, block, checkpointMeta(), optimizer.state);
    await saveCheckpoint(run.checkpointPath, checkpoint);
  };

  await run.create();
  // Rewritten on resume too: --epochs may have extended the run.
  await run.writeJson("config.json", config);
  const started = performance.now();
  let trainedImages = 0;
  let trainingSeconds = 0;
  let lastLoss = NaN;
  const lossCurve: [number, number][] = [];
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
      const epochLosses: number[] = [];
      const first = epoch === position.epoch ? position.batch : 0;
      try {
        for await (const batch of loader.epoch(epoch, first)) {
          gpu.write(views, batch.views);
          optimizer.prepare(position.step + 1, rate(position.step));
          gpu.submit(program);
          position = { epoch, batch: batch.step + 1, step: position.step + 1, done: false };
          sinceRead.images += batch.size;
          epochImages += batch.size;
          const last = batch.step === stepsPerEpoch - 1;
          interrupted = options.signal?.aborted ?? false;
          // Reading the loss waits for the GPU, so it is read about once a second.
          if (!last && !interrupted && performance.now() - sinceRead.time < 1000) continue;
          const loss = (await gpu.readF32(step.loss))[0];
          const now = performance.now();
          if (!Number.isFinite(loss)) {
            throw new SelfsupError(
              `Loss is ${loss} at step ${position.step} (epoch ${epoch + 1}): stopped; ` +
                `${run.checkpointPath} keeps the last good state. Try a lower --lr`,
            );
          }
          const imagesPerSecond = sinceRead.images / ((now - sinceRead.time) / 1000);
          lastLoss = loss;
          epochLosses.push(loss);
          lossCurve.push([position.step, loss]);
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
      if (!interrupted || position.batch === stepsPerEpoch) {
        position = { epoch: epoch + 1, batch: 0, step: position.step, done: false };
      }
      await save();
      await run.appendMetrics({
        type: "epoch",
        epoch: epoch + 1,
        loss: epochLosses.length ? average(epochLosses) : null,
        images_per_second: round(epochImages / seconds),
        seconds: round(seconds),
      });
      log(
        `epoch ${epoch + 1}/${config.epochs}: loss ${lastLoss.toFixed(4)}, ` +
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
    if (config.evaluation && !stopped()) {
      const data = { train, test: await loadDataset(config.dataset, "test"), mean, std };
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

  const summary: PretrainSummary = {
    status: interrupted ? "interrupted" : "done",
    adapter: gpu.adapterName,
    epochs: position.epoch,
    steps: position.step,
    loss: lastLoss,
    images_per_second: round(trainedImages / Math.max(trainingSeconds, 1e-9)),
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
      loss: lossCurve,
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
    await run.appendMetrics({ type: "knn", model: name, top1: evaluation.knn.top1 });
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
  if (config.batchSize < 2) {
    throw new SelfsupError("--batch-size must be at least 2: NT-Xent needs negatives");
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function average(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
