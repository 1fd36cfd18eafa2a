/**
 * Fine-tuning, the seed's second evaluation: a pre-trained backbone (or a random one, the
 * supervised baseline) with a new linear classifier, trained on labels with crop-and-flip
 * augmentation, then top-1 accuracy on the test split. It runs in a run folder like
 * pre-training — held by one process, checkpointed every epoch, stopped cleanly by Ctrl-C or
 * SIGTERM, resumed exactly — through the same training loop.
 *
 * @module
 */
import {
  assertArchitecture,
  type CheckpointMeta,
  loadCheckpoint,
  restoreBackbone,
} from "./checkpoint.ts";
import { augmentPreset } from "./data/augment.ts";
import { MultiViewLoader } from "./data/batcher.ts";
import { type DatasetConfig, datasetLabel, datasetNormalization, loadImages } from "./data/load.ts";
import { SelfsupError } from "./errors.ts";
import { backboneFeatures } from "./evaluate.ts";
import { createGpu } from "./gpu/device.ts";
import type { Gpu } from "./gpu/gpu.ts";
import { buildClassifier, supervised } from "./methods/supervised.ts";
import { type BackboneConfig, checkImageSize, describeBackbone } from "./nn/backbone.ts";
import { prefixed } from "./nn/module.ts";
import { vitLayerDecay } from "./optim/layer_decay.ts";
import { createOptimizer, type OptimizerConfig } from "./optim/optimizer.ts";
import { renderPlot } from "./plot.ts";
import { classifierAccuracy } from "./probe.ts";
import { RunFolder } from "./run_folder.ts";
import { checkTraining, round, trainRun } from "./trainer.ts";

/** Everything that defines a fine-tuning run; saved as the run's `config.json`. */
export interface FinetuneConfig {
  /** The pre-trained checkpoint whose backbone starts the run; null starts at random. */
  readonly checkpoint: string | null;
  /** The backbone: the checkpoint's, or the one a random start builds. */
  readonly backbone: BackboneConfig;
  readonly dataset: DatasetConfig;
  /** The mean and std images are normalised with: the checkpoint's, or the dataset's. */
  readonly normalization: CheckpointMeta["normalization"];
  readonly epochs: number;
  readonly batchSize: number;
  readonly optimizer: OptimizerConfig["name"];
  readonly learningRate: number;
  readonly weightDecay: number;
  readonly excludeBiasAndNorm?: boolean;
  readonly warmupEpochs: number;
  readonly schedule: "cosine" | "constant";
  /** RandomResizedCrop's area range of the crop-and-flip augmentation. */
  readonly cropScale: readonly [number, number];
  /**
   * Layer-wise learning-rate decay of a ViT (MAE's fine-tuning: 0.65 for ViT-B): block i of
   * L learns at decay^(L + 1 − (i + 1)) of the rate, the embeddings at decay^(L + 1), the
   * classifier and final norm at the full rate. Left out: every parameter at the full rate.
   */
  readonly layerDecay?: number;
  readonly seed: number;
  readonly workers?: number;
}

/** What a fine-tuning run produced; also written as `summary.json`. */
export interface FinetuneSummary {
  readonly status: "done" | "interrupted";
  readonly adapter: string;
  /** The pre-trained checkpoint, or "random init". */
  readonly init: string;
  readonly epochs: number;
  readonly steps: number;
  readonly loss: number;
  readonly images_per_second: number;
  readonly training_seconds: number;
  readonly seconds: number;
  readonly checkpoint: string;
  /** Top-1 accuracy of the fine-tuned classifier on the test split. */
  readonly top1?: number;
}

/** Defaults of `deno task finetune`: AdamW with a warm-up epoch and cosine decay. */
export const finetuneDefaults = {
  epochs: 5,
  batchSize: 64,
  optimizer: "adamw",
  learningRate: 1e-3,
  weightDecay: 0.05,
  excludeBiasAndNorm: true,
  warmupEpochs: 1,
  schedule: "cosine",
  cropScale: [0.25, 1],
  seed: 0,
} as const;

/**
 * The backbone and normalisation a fine-tuning run starts from: a checkpoint's (of any
 * method), or a random backbone of `backbone`'s shape with the dataset's statistics.
 */
export async function finetuneStart(
  checkpoint: string | null,
  backbone: BackboneConfig,
  dataset: DatasetConfig,
): Promise<Pick<FinetuneConfig, "backbone" | "normalization">> {
  if (!checkpoint) return { backbone, normalization: datasetNormalization(dataset) };
  const { meta } = await loadCheckpoint(checkpoint);
  return { backbone: meta.architecture.backbone, normalization: meta.normalization };
}

/**
 * Fine-tunes a backbone with a new linear classifier on the training split's labels, then
 * measures the classifier's top-1 accuracy on the test split.
 */
export async function finetune(
  config: FinetuneConfig,
  options: {
    readonly out: string;
    readonly resume?: boolean;
    /** The device to train on, left as it is; without one the call makes its own and destroys it. */
    readonly gpu?: Gpu;
    readonly signal?: AbortSignal;
    readonly log?: (line: string) => void;
  },
): Promise<FinetuneSummary> {
  validate(config);
  const log = options.log ?? ((line: string) => console.error(line));
  await using run = await RunFolder.open(options.out, { resume: options.resume ?? false, log });
  const resumed = options.resume ? await loadCheckpoint(run.checkpointPath) : undefined;
  if (resumed?.meta.progress.done && resumed.meta.progress.epoch >= config.epochs) {
    throw new SelfsupError(
      `${options.out} has finished its ${resumed.meta.progress.epoch} epochs: pass a larger --epochs`,
    );
  }
  const initial = !resumed && config.checkpoint
    ? await loadCheckpoint(config.checkpoint)
    : undefined;
  const gpu = options.gpu ?? await createGpu();
  // A device made for this call goes with it (one per call would pile up in a process that
  // trains again); the caller's stays the caller's.
  using _made = options.gpu ? null : gpu;
  const train = await loadImages(config.dataset, "train");
  const test = await loadImages(config.dataset, "test");
  const classes = train.classNames.length;
  if (classes < 2) {
    throw new SelfsupError(`${datasetLabel(config.dataset)} has one class: nothing to classify`);
  }
  const { mean, std } = config.normalization;
  const architecture: CheckpointMeta["architecture"] = {
    method: supervised.name,
    backbone: config.backbone,
    imageSize: train.height,
  };
  if (resumed) assertArchitecture(resumed, architecture, run.checkpointPath);
  checkImageSize(config.backbone, train.height, train.width);

  const crop = { scale: config.cropScale, ratio: [3 / 4, 4 / 3] } as const;
  const recipe = {
    ...augmentPreset("eval", train.height, train.width),
    crop,
    flip: 0.5,
    mean,
    std,
  };
  const options_ = supervised.validate({ numClasses: classes }, config.batchSize);
  const groups = supervised.views(options_, recipe);
  const loader = new MultiViewLoader(train, {
    batchSize: config.batchSize,
    seed: config.seed,
    groups,
    workers: config.workers,
  });
  const stepsPerEpoch = loader.batchesPerEpoch;
  const classifier = buildClassifier({
    gpu,
    backbone: config.backbone,
    batchSize: config.batchSize,
    totalSteps: config.epochs * stepsPerEpoch,
    stepsPerEpoch,
    seed: config.seed,
  }, options_);
  const optimizer = createOptimizer(gpu, classifier.trainable, {
    name: config.optimizer,
    weightDecay: config.weightDecay,
    excludeBiasAndNorm: config.excludeBiasAndNorm,
    ...(config.layerDecay !== undefined && config.backbone.name === "vit"
      ? { lrScale: vitLayerDecay(config.backbone.depth, config.layerDecay, "backbone.") }
      : {}),
  });
  try {
    if (initial) {
      const names = prefixed("backbone", classifier.backbone).map(([name]) => name);
      restoreBackbone(initial, classifier.trainable, names, config.checkpoint!);
    }
    const started = performance.now();
    const outcome = await trainRun({
      gpu,
      run,
      resumed,
      method: classifier,
      optimizer,
      loader,
      groups,
      config,
      architecture,
      normalization: { mean, std },
      images: train.length,
      signal: options.signal,
      log,
    });

    let top1: number | undefined;
    if (!outcome.interrupted && !options.signal?.aborted) {
      const features = await backboneFeatures(
        gpu,
        classifier.backbone,
        test,
        { mean, std },
        config.batchSize,
        "fine-tuned features (test)",
      );
      top1 = await classifierAccuracy(
        gpu,
        classifier.head,
        features.features,
        features.labels,
        features.dim,
        config.batchSize,
      );
      await run.appendMetrics({ type: "finetune", top1 });
      log(`fine-tuned top-1 ${(100 * top1).toFixed(2)}%`);
    }
    const records = await run.readMetrics();
    const curve = records.filter((r) => r.type === "step")
      .map((r) => [Number(r.step), Number(r.loss)] as [number, number]);
    const summary: FinetuneSummary = {
      status: outcome.interrupted ? "interrupted" : "done",
      adapter: gpu.adapterName,
      init: config.checkpoint ?? "random init",
      epochs: outcome.position.epoch,
      steps: outcome.position.step,
      loss: Number.isNaN(outcome.lastLoss) ? curve.at(-1)?.[1] ?? NaN : outcome.lastLoss,
      images_per_second: round(outcome.trainedImages / Math.max(outcome.trainingSeconds, 1e-9)),
      training_seconds: round(outcome.trainingSeconds),
      seconds: round((performance.now() - started) / 1000),
      checkpoint: run.checkpointPath,
      top1,
    };
    await run.writeJson("summary.json", summary);
    await run.writeText(
      "plot.svg",
      renderPlot({
        title: `Fine-tuning ${describeBackbone(config.backbone)} from ${summary.init} on ` +
          config.dataset.name,
        loss: curve,
        accuracies: top1 === undefined ? [] : [{ label: "fine-tuned", value: top1 }],
      }),
    );
    return summary;
  } finally {
    loader.close();
    optimizer.destroy();
    classifier.destroy();
  }
}

function validate(config: FinetuneConfig): void {
  checkTraining(config);
  if (config.backbone.name === "text") {
    throw new SelfsupError(
      `${config.checkpoint ?? "the configuration"} holds a text encoder: fine-tuning trains ` +
        "an image classifier (probe a text encoder with deno task probe)",
    );
  }
  if (config.layerDecay !== undefined) {
    if (config.backbone.name !== "vit") {
      throw new SelfsupError(
        "--layer-decay is for a ViT backbone: the ResNet has no blocks to decay",
      );
    }
    if (!(config.layerDecay > 0 && config.layerDecay <= 1)) {
      throw new SelfsupError(`--layer-decay must be in (0, 1], got ${config.layerDecay}`);
    }
  }
  const [low, high] = config.cropScale;
  if (!(low > 0 && low <= high && high <= 1)) {
    throw new SelfsupError(`--crop-scale must be two numbers 0 < a ≤ b ≤ 1, got ${low}, ${high}`);
  }
}
