import { augmentPreset } from "./data/augment.ts";
import type { Dataset } from "./data/load.ts";
import { isTextDataset } from "./data/text.ts";
import type { Gpu } from "./gpu/gpu.ts";
import type { Backbone } from "./nn/backbone.ts";
import type { RGB } from "./checkpoint.ts";
import { SelfsupError } from "./errors.ts";
import {
  extractFeatures,
  type Features,
  knnAccuracy,
  linearProbe,
  type ProbeFeatures,
  type ProbeResult,
} from "./probe.ts";
import { progress } from "./progress.ts";

/** How to evaluate a backbone's features; null leaves a measure out. */
export interface EvaluationConfig {
  /**
   * A linear probe trained with Adam on frozen features (the seed: 5 epochs, lr 1e-3, batch
   * 64, raw features).
   */
  readonly probe: {
    readonly epochs: number;
    readonly learningRate: number;
    readonly batchSize: number;
    readonly features: ProbeFeatures;
  } | null;
  /** The weighted kNN monitor (k 200, temperature 0.1). */
  readonly knn: { readonly k: number; readonly temperature: number } | null;
  /** Images per forward pass when extracting features. */
  readonly batchSize: number;
  readonly seed: number;
}

/** The accuracies a backbone reached. */
export interface Evaluation {
  readonly probe?: ProbeResult;
  /** `k`: the neighbours that voted, at most the training images. */
  readonly knn?: { readonly top1: number; readonly k: number };
}

/** The splits to evaluate on and the normalisation the backbone expects. */
export interface EvaluationData {
  readonly train: Dataset;
  readonly test: Dataset;
  readonly mean: RGB;
  readonly std: RGB;
}

/**
 * Extracts un-augmented features of both splits in eval mode, then runs the linear probe and
 * the kNN monitor on them. `name` labels the progress display ("trained", "random init").
 */
export async function evaluateBackbone(
  gpu: Gpu,
  backbone: Backbone,
  data: EvaluationData,
  config: EvaluationConfig,
  name: string,
): Promise<Evaluation> {
  const features = (dataset: Dataset, split: string) =>
    backboneFeatures(gpu, backbone, dataset, data, config.batchSize, `${name} features (${split})`);
  const train = await features(data.train, "train");
  const test = await features(data.test, "test");
  const numClasses = data.train.classNames.length;
  const probe = config.probe
    ? await linearProbe(gpu, train, test, { ...config.probe, seed: config.seed, numClasses })
    : undefined;
  const knn = config.knn
    ? {
      top1: await knnAccuracy(gpu, train, test, { ...config.knn, numClasses }),
      k: Math.min(config.knn.k, data.train.length),
    }
    : undefined;
  return { probe, knn };
}

/**
 * Refuses data on which an accuracy means nothing — a split whose images all have one
 * class — and returns a note for each measure that will run otherwise than configured (a
 * kNN k above the number of training images). Cheap: it reads labels only, so a run calls
 * it before training. `source` names the data in messages, `remedy` (if any) ends a refusal.
 */
export function checkEvaluationData(
  data: Pick<EvaluationData, "train" | "test">,
  config: EvaluationConfig,
  source: string,
  remedy?: string,
): string[] {
  for (const [split, dataset] of [["training", data.train], ["test", data.test]] as const) {
    const classes = new Set<number>();
    for (let i = 0; i < dataset.length && classes.size < 2; i++) classes.add(dataset.label(i));
    if (classes.size < 2) {
      const items = isTextDataset(dataset) ? "texts" : "images";
      const found = dataset.length
        ? `${items} have 1 class (${dataset.classNames[dataset.label(0)]})`
        : `split has no ${items}`;
      throw new SelfsupError(
        `Cannot evaluate on ${source}: its ${split} ${found}; a probe or kNN accuracy needs ` +
          `at least two classes` + (remedy ? `; ${remedy}` : ""),
      );
    }
  }
  const notes: string[] = [];
  if (config.knn && config.knn.k > data.train.length) {
    notes.push(
      `kNN: k ${config.knn.k} exceeds the ${data.train.length} training images, so all ` +
        `${data.train.length} vote`,
    );
  }
  return notes;
}

/**
 * The backbone's eval-mode features of a dataset's un-augmented images, normalised with
 * `mean` and `std` (or of its documents, for a text encoder), with a progress display
 * labelled `label`.
 */
export async function backboneFeatures(
  gpu: Gpu,
  backbone: Backbone,
  dataset: Dataset,
  { mean, std }: { readonly mean: RGB; readonly std: RGB },
  batchSize: number,
  label: string,
): Promise<Features> {
  const text = isTextDataset(dataset);
  const bar = progress({ label, total: dataset.length, unit: text ? "documents" : "images" });
  try {
    const [height, width] = text ? [1, 1] : [dataset.height, dataset.width];
    return await extractFeatures(gpu, backbone, dataset, {
      batchSize,
      transform: { ...augmentPreset("eval", height, width), mean, std },
      onProgress: (done) => bar.update(done),
    });
  } finally {
    bar.stop();
  }
}
