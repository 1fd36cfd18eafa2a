import { assertArchitecture, type CheckpointMeta, loadCheckpoint } from "./checkpoint.ts";
import { augmentPreset, type TrainingRecipe, trainingRecipes } from "./data/augment.ts";
import { evalBatches, MultiViewLoader, type TrainingLoader } from "./data/batcher.ts";
import { type ImageDataset, limit } from "./data/dataset.ts";
import {
  type Dataset,
  type DatasetConfig,
  datasetLabel,
  datasetNormalization,
  isCaptionedDatasetName,
  isTextDatasetName,
  loadDataset,
} from "./data/load.ts";
import { isTextDataset } from "./data/text.ts";
import { packCorpus, type TextViews, TokenLoader } from "./data/text_batcher.ts";
import { tokenizerNamed } from "./data/tokenizer.ts";
import type { ViewGroup } from "./data/views.ts";
import { SelfsupError } from "./errors.ts";
import {
  backboneFeatures,
  checkEvaluationData,
  evaluateBackbone,
  type Evaluation,
  type EvaluationConfig,
} from "./evaluate.ts";
import { createGpu } from "./gpu/device.ts";
import type { Gpu } from "./gpu/gpu.ts";
import {
  createLossScale,
  createMethodOptimizer,
  type Method,
  type MethodConfig,
} from "./methods/method.ts";
import { methodNamed } from "./methods/registry.ts";
import {
  type Backbone,
  type BackboneConfig,
  checkImageSize,
  checkPrecision,
  describeBackbone,
} from "./nn/backbone.ts";
import type { TextEncoderConfig } from "./nn/text_encoder.ts";
import { CaptionedLoader, hasCaptions } from "./data/captions.ts";
import type { OptimizerConfig } from "./optim/optimizer.ts";
import type { Precision } from "./gpu/kernel.ts";
import { renderPlot } from "./plot.ts";
import { reconstructionsPng } from "./plot_reconstructions.ts";
import { RunFolder } from "./run_folder.ts";
import { checkTraining, round, type TrainingOutcome, trainRun } from "./trainer.ts";

/** Everything that defines a pre-training run; saved as the run's `config.json`. */
export interface PretrainConfig {
  /** The method and its options, e.g. `{ name: "moco", queueSize: 4096 }` (see src/methods). */
  readonly method: MethodConfig;
  readonly dataset: DatasetConfig;
  /** The encoder trained and evaluated, e.g. `{ name: "resnet18", stem: "cifar", width: 64 }`. */
  readonly backbone: BackboneConfig;
  /**
   * The type of the backbone's activations and gradients while training: f32 (left out), or
   * f16 on a ResNet where the adapter has `shader-f16`, with f32 parameters, optimizer state,
   * batch-norm statistics and sums across K-steps, and dynamic loss scaling.
   */
  readonly precision?: Precision;
  /** The text encoder of a method that pairs images with text (CLIP). */
  readonly text?: TextEncoderConfig;
  readonly epochs: number;
  /** Images per step; each contributes the method's views. */
  readonly batchSize: number;
  readonly optimizer: OptimizerConfig["name"];
  readonly learningRate: number;
  readonly weightDecay: number;
  /**
   * Keep weight decay (and LARS's adaptation) off biases and normalisation parameters; left
   * out: the optimizer's default (LARS yes, the others no).
   */
  readonly excludeBiasAndNorm?: boolean;
  /** Adam's β1 and β2 (PyTorch's 0.9, 0.999 when left out). */
  readonly betas?: readonly [number, number];
  /** SGD's or LARS's momentum (PyTorch's SGD: 0; LARS: 0.9 when left out). */
  readonly optimizerMomentum?: number;
  /** Epochs of linear warm-up (may be fractional); 0 for none. */
  readonly warmupEpochs: number;
  readonly schedule: "cosine" | "constant";
  readonly seed: number;
  /** The base recipe of the training views (see `augmentPreset`); methods derive theirs. */
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
  /** The device to train on, left as it is; without one the call makes its own and destroys it. */
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
  /** The collapse monitor's last value: the spread of the L2-normalised embeddings. */
  readonly embedding_std?: number;
  /** Mean training throughput of this call, in images (not views) per second. */
  readonly images_per_second: number;
  /** Seconds this call spent training, evaluation excluded. */
  readonly training_seconds: number;
  /** Seconds of the whole call: training and evaluation. */
  readonly seconds: number;
  readonly checkpoint: string;
  readonly probe?: { readonly top1: number; readonly train_top1: number };
  readonly knn?: { readonly top1: number; readonly k: number };
  /** What the method itself predicts on held-out data (MLM: masked-token accuracy). */
  readonly method_metrics?: Record<string, number>;
  readonly baseline?: {
    readonly probe?: { readonly top1: number };
    readonly knn?: { readonly top1: number; readonly k: number };
    readonly method_metrics?: Record<string, number>;
  };
}

/**
 * Pre-trains a backbone with a self-supervised method, checkpointing every epoch into the run
 * folder, then evaluates it with a linear probe and the kNN monitor (and a random-init
 * baseline). The run folder is held for the whole call (a second process is refused), and
 * everything the run needs, the evaluation's data included, is loaded and checked before the
 * first step. A non-finite loss or collapsed embeddings stop the run with a
 * {@link SelfsupError} and keep the last good checkpoint; an abort saves one at the current
 * step.
 */
export async function pretrain(
  config: PretrainConfig,
  options: PretrainOptions,
): Promise<PretrainSummary> {
  const method = methodNamed(config.method.name);
  const methodOptions = method.validate(withoutName(config.method), config.batchSize);
  validateConfig(config, method);
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
  // A device made for this call goes with it (one per call would pile up in a process that
  // trains again); the caller's stays the caller's.
  using _made = options.gpu ? null : gpu;
  const backbone = method.backbone?.(methodOptions, config.backbone) ?? config.backbone;
  // Refused before the data are loaded (a download, an extraction): that is minutes to wait for
  // an error.
  const precision = config.precision ?? "f32";
  checkPrecision(precision, backbone, gpu);
  const data = await loadRunData(config, log);
  const { train, mean, std } = data;
  const architecture: CheckpointMeta["architecture"] = {
    method: method.name,
    backbone,
    ...(isTextDataset(train) ? {} : { imageSize: train.height }),
    ...(config.text ? { text: config.text } : {}),
  };
  if (resumed) assertArchitecture(resumed, architecture, run.checkpointPath);
  const { loader, groups, text, items } = trainingLoader(
    method,
    methodOptions,
    config,
    backbone,
    data,
  );
  const stepsPerEpoch = loader.batchesPerEpoch;
  const totalSteps = config.epochs * stepsPerEpoch;
  const context = {
    gpu,
    backbone,
    text: config.text,
    batchSize: config.batchSize,
    totalSteps,
    stepsPerEpoch,
    seed: config.seed,
  };
  if (precision === "f16" && gpu.adapterClass === "cpu") {
    log(`note: ${gpu.adapterName} emulates f16 arithmetic; --precision f16 trains slower there`);
  }
  // The run's precision goes to the backbones the method builds; checkpoints and evaluation
  // of them later describe the network alone.
  const built = precision === "f16"
    ? { ...context, backbone: { ...backbone, precision } as BackboneConfig }
    : context;
  const methodRun = method.build(built, methodOptions);
  const lossScale = createLossScale(gpu, methodRun);
  const optimizer = createMethodOptimizer(gpu, methodRun, {
    name: config.optimizer,
    weightDecay: config.weightDecay,
    excludeBiasAndNorm: config.excludeBiasAndNorm,
    ...(config.betas ? { betas: [...config.betas] as [number, number] } : {}),
    ...(config.optimizerMomentum !== undefined ? { momentum: config.optimizerMomentum } : {}),
  });
  // Freed after training, to give evaluation the memory, or on the way out: once.
  let trainingFreed = false;
  const freeTraining = () => {
    if (trainingFreed) return;
    trainingFreed = true;
    loader.close();
    optimizer.destroy();
    lossScale?.destroy();
  };
  try {
    const started = performance.now();
    const outcome = await trainRun({
      gpu,
      run,
      resumed,
      method: methodRun,
      optimizer,
      lossScale,
      loader,
      groups,
      text,
      config,
      architecture,
      normalization: { mean, std },
      images: items,
      signal: options.signal,
      log,
    });
    freeTraining();

    let evaluation: Evaluation = {};
    let baseline: Evaluation | undefined;
    let methodMetrics: Record<string, number> | undefined;
    let baselineMetrics: Record<string, number> | undefined;
    // Training is saved; an interrupt now only cuts the evaluation short.
    const stopped = () => {
      if (options.signal?.aborted) {
        log(`evaluation skipped: deno task probe --checkpoint ${run.checkpointPath}`);
      }
      return options.signal?.aborted ?? false;
    };
    if (!outcome.interrupted && (config.evaluation || methodRun.evaluate) && !stopped()) {
      const splits = data.test && { train, test: data.test, mean, std };
      if (config.evaluation && splits) {
        evaluation = await evaluateBackbone(
          gpu,
          methodRun.backbone,
          splits,
          config.evaluation,
          "trained",
        );
        await logEvaluation(run, "trained", evaluation, log);
      }
      // A method's own measure (MLM's masked-token accuracy) needs held-out data but no
      // labels: with the probe off it still runs, on the split the dataset holds out (an
      // unlabelled corpus's fifth), loaded now.
      const test = data.test ??
        (methodRun.evaluate ? await heldOutSplit(config.dataset, log) : undefined);
      const evaluationBatch = config.evaluation?.batchSize ?? config.batchSize;
      const held = test && {
        train,
        test,
        seed: config.evaluation?.seed ?? config.seed,
        mean,
        std,
        batchSize: evaluationBatch,
        extract: async (encoder: Backbone, dataset: Dataset) =>
          (await backboneFeatures(
            gpu,
            encoder,
            dataset,
            { mean, std },
            evaluationBatch,
            "embeddings",
          ))
            .features,
      };
      if (held) {
        methodMetrics = await methodRun.evaluate?.(held);
        await logMetrics(run, "trained", methodMetrics, log);
      }
      if (config.baseline && config.evaluation && splits && !stopped()) {
        // The method as it starts from this seed: its own initialisation, which for MAE and
        // MLM is not the layers' default.
        const fresh = method.build(context, methodOptions);
        try {
          baseline = await evaluateBackbone(
            gpu,
            fresh.backbone,
            splits,
            config.evaluation,
            "random init",
          );
          await logEvaluation(run, "random init", baseline, log);
          if (fresh.evaluate && held) {
            baselineMetrics = await fresh.evaluate(held);
            await logMetrics(run, "random init", baselineMetrics, log);
          }
        } finally {
          fresh.destroy();
        }
      }
    }
    // A method that reconstructs its input (MAE) shows a few test images, masked and
    // reconstructed, for people to look at.
    if (!outcome.interrupted && methodRun.preview && !options.signal?.aborted) {
      const images = (data.test ?? train) as ImageDataset;
      const count = Math.min(8, images.length);
      const [batch] = evalBatches(limit(images, count), {
        batchSize: count,
        augment: { ...augmentPreset("eval", images.height, images.width), mean, std },
      });
      const shown = await methodRun.preview(batch.images, count);
      await run.writeText("reconstructions.png", reconstructionsPng(shown, mean, std));
    }
    const summary = await report(run, outcome, {
      adapter: gpu.adapterName,
      started,
      title: `${method.title}, ${describeBackbone(backbone)} on ${config.dataset.name}`,
      evaluation,
      baseline,
      methodMetrics,
      baselineMetrics,
    });
    return summary;
  } finally {
    freeTraining();
    methodRun.destroy();
  }
}

/**
 * The loader of a run's training data and the shape of a step's inputs: groups of augmented
 * views of images, or token sequences of text packed into blocks. `items` is what an epoch
 * draws its batches from: the images, or the blocks of text.
 */
function trainingLoader(
  // deno-lint-ignore no-explicit-any
  method: Method<any>,
  options: unknown,
  config: PretrainConfig,
  backbone: PretrainConfig["backbone"],
  { train, mean, std }: { train: Dataset } & CheckpointMeta["normalization"],
): { loader: TrainingLoader; groups: ViewGroup[]; text?: TextViews; items: number } {
  const batching = { batchSize: config.batchSize, seed: config.seed };
  if (isTextDataset(train)) {
    if (!method.text) throw new SelfsupError(`${method.title} does not train on text`);
    if (backbone.name !== "text") {
      throw new SelfsupError(
        `${method.title} needs a text encoder (--backbone text), not ${describeBackbone(backbone)}`,
      );
    }
    const text = method.text(options, backbone);
    const blocks = packCorpus(train, tokenizerNamed(text.tokenizer), text);
    const loader = new TokenLoader(blocks, { ...batching, views: text });
    return { loader, groups: [], text, items: blocks.blocks.length };
  }
  checkImageSize(backbone, train.height, train.width);
  const base = { ...augmentPreset(config.augmentation, train.height, train.width), mean, std };
  const groups = method.views(options, base);
  const pairsText = method.modality === "captioned images";
  const images = new MultiViewLoader(hasCaptions(train) ? train.images : train, {
    ...batching,
    groups,
    workers: config.workers,
  });
  if (!pairsText) return { loader: images, groups, items: train.length };
  if (!method.text || !config.text || !hasCaptions(train)) {
    images.close();
    throw new SelfsupError(`${method.title} needs captioned images and a text encoder`);
  }
  const text = method.text(options, config.text);
  const loader = new CaptionedLoader(images, train.captions, text, config.batchSize);
  return { loader, groups, text, items: train.length };
}

/**
 * The held-out split of a run trained without evaluation, for the method's own measure; none,
 * said in a line, where the dataset has none (a `train/` folder without `test/`).
 */
async function heldOutSplit(
  dataset: PretrainConfig["dataset"],
  log: (line: string) => void,
): Promise<Dataset | undefined> {
  try {
    return await loadDataset(dataset, "test");
  } catch (error) {
    if (!(error instanceof SelfsupError)) throw error;
    log(`not measured on held-out data: ${error.message}`);
    return undefined;
  }
}

/** The training split, the evaluation's test split (checked before training) and the normalisation. */
async function loadRunData(config: PretrainConfig, log: (line: string) => void) {
  const train = await loadDataset(config.dataset, "train");
  const test = config.evaluation ? await loadDataset(config.dataset, "test") : undefined;
  if (config.evaluation && test) {
    const label = datasetLabel(config.dataset);
    const remedy = "--no-probe trains without evaluating";
    for (const note of checkEvaluationData({ train, test }, config.evaluation, label, remedy)) {
      log(note);
    }
  }
  const { mean, std } = config.normalization ?? datasetNormalization(config.dataset);
  return { train, test, mean, std };
}

/** Writes summary.json and plot.svg from the run's whole metrics log; returns the summary. */
async function report(
  run: RunFolder,
  outcome: TrainingOutcome,
  { adapter, started, title, evaluation, baseline, methodMetrics, baselineMetrics }: {
    adapter: string;
    started: number;
    title: string;
    evaluation: Evaluation;
    baseline?: Evaluation;
    methodMetrics?: Record<string, number>;
    baselineMetrics?: Record<string, number>;
  },
): Promise<PretrainSummary> {
  const records = await run.readMetrics();
  const curve = series(records, "loss");
  // A call that trained no step (its run had reached --epochs) reports the run's last loss.
  const lastLoss = Number.isNaN(outcome.lastLoss) ? curve.at(-1)?.[1] ?? NaN : outcome.lastLoss;
  const { position } = outcome;
  const summary: PretrainSummary = {
    status: outcome.interrupted ? "interrupted" : "done",
    adapter,
    epochs: position.epoch,
    steps: position.step,
    trained_steps: position.step - outcome.firstStep,
    loss: lastLoss,
    embedding_std: series(records, "embedding_std").at(-1)?.[1],
    images_per_second: round(outcome.trainedImages / Math.max(outcome.trainingSeconds, 1e-9)),
    training_seconds: round(outcome.trainingSeconds),
    seconds: round((performance.now() - started) / 1000),
    checkpoint: run.checkpointPath,
    probe: evaluation.probe &&
      { top1: evaluation.probe.top1, train_top1: evaluation.probe.trainTop1 },
    knn: evaluation.knn,
    method_metrics: methodMetrics,
    baseline: baseline && {
      probe: baseline.probe && { top1: baseline.probe.top1 },
      knn: baseline.knn,
      method_metrics: baselineMetrics,
    },
  };
  await run.writeJson("summary.json", summary);
  await run.writeText(
    "plot.svg",
    renderPlot({
      title,
      loss: curve,
      spread: series(records, "embedding_std"),
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

/** Records and logs a method's own measures, if it has any. */
async function logMetrics(
  run: RunFolder,
  name: string,
  metrics: Record<string, number> | undefined,
  log: (line: string) => void,
): Promise<void> {
  if (!metrics) return;
  await run.appendMetrics({ type: "method", model: name, ...metrics });
  for (const [key, value] of Object.entries(metrics)) {
    log(`${name}: ${key.replaceAll("_", " ")} ${(100 * value).toFixed(2)}%`);
  }
}

/** Refuses values no run can use, naming the flag. */
// deno-lint-ignore no-explicit-any
function validateConfig(config: PretrainConfig, method: Method<any>): void {
  checkTraining(config);
  const text = isTextDatasetName(config.dataset.name);
  if (method.modality === "captioned images" && !isCaptionedDatasetName(config.dataset.name)) {
    throw new SelfsupError(
      `${method.title} trains on captioned images: use --dataset synthetic-captions or captions`,
    );
  }
  if (text !== (method.modality === "text")) {
    throw new SelfsupError(
      `${method.title} trains on ${method.modality ?? "images"}, and --dataset ` +
        `${config.dataset.name} holds ${text ? "text" : "images"}: use --dataset ${
          method.modality === "text"
            ? "text or synthetic-text"
            : "synthetic, cifar10, cifar100 or folder"
        }`,
    );
  }
  if (!Number.isSafeInteger(config.seed) || config.seed < 0) {
    throw new SelfsupError(`--seed must be a whole number ≥ 0 below 2^53, got ${config.seed}`);
  }
  if (config.precision !== undefined && config.precision !== "f32" && config.precision !== "f16") {
    throw new SelfsupError(`--precision must be f32 or f16, got ${config.precision}`);
  }
  if (!trainingRecipes.includes(config.augmentation)) {
    throw new SelfsupError(
      `augmentation must be one of ${trainingRecipes.join(", ")}, got ${
        String(config.augmentation)
      }`,
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
}

/**
 * A per-step series of the whole run from its metrics log, over all its sessions: where a
 * resumed run trained a step again (the first session died after its checkpoint), the later
 * record counts.
 */
function series(records: readonly Record<string, unknown>[], key: string): [number, number][] {
  const byStep = new Map<number, number>();
  for (const record of records) {
    if (record.type === "step" && typeof record.step === "number" && key in record) {
      byStep.set(record.step, Number(record[key]));
    }
  }
  return [...byStep].sort(([a], [b]) => a - b);
}

/** A run's method settings without the name that selects the method. */
function withoutName({ name: _, ...options }: MethodConfig): Record<string, unknown> {
  return options;
}
