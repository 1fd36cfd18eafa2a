/**
 * The interface every self-supervised method implements. A method is one module in this
 * folder, registered in `registry.ts`; the trainer, checkpoints, evaluation, bench and the
 * tasks work through this interface and name no method.
 *
 * @module
 */
import type { AugmentConfig, TrainingRecipe } from "../data/augment.ts";
import type { TrainingBatch } from "../data/batcher.ts";
import type { Dataset, DatasetConfig } from "../data/load.ts";
import { predictionsPerSequence, type TextViews } from "../data/text_batcher.ts";
import type { ViewGroup } from "../data/views.ts";
import type { Gpu, Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { LossScale } from "../optim/loss_scale.ts";
import { createOptimizer, type Optimizer, type OptimizerConfig } from "../optim/optimizer.ts";
import type { Backbone, BackboneConfig } from "../nn/backbone.ts";
import type { TextEncoderConfig } from "../nn/text_encoder.ts";
import type { ParameterBlock } from "../nn/parameters.ts";
import type { Initializer, Parameter } from "../nn/module.ts";
import { SelfsupError } from "../errors.ts";
import { Random } from "../data/random.ts";

/** A method's options as they appear in a run's configuration: its name and its settings. */
export type MethodConfig = { readonly name: string } & Readonly<Record<string, unknown>>;

/** How a command-line flag's value is parsed and checked. */
export type OptionKind =
  | "positiveInteger"
  | "nonNegativeInteger"
  | "positiveNumber"
  | "nonNegativeNumber"
  | "fraction"
  | "boolean"
  | "choice";

/** One option of a method, and the flag that sets it. */
export interface MethodOption {
  /** The key in the method's options, e.g. `queueSize`. */
  readonly key: string;
  /** The flag, e.g. `--queue-size`. */
  readonly flag: string;
  readonly kind: OptionKind;
  readonly description: string;
  /** May be left unset (the method then derives it, e.g. from the backbone's width). */
  readonly optional?: boolean;
  /** The values a `choice` option takes. */
  readonly choices?: readonly string[];
}

/** What a method needs to know of the run to build its networks and schedules. */
export interface BuildContext {
  readonly gpu: Gpu;
  readonly backbone: BackboneConfig;
  /** The text encoder of a method that pairs images with text (CLIP). */
  readonly text?: TextEncoderConfig;
  /** Images per step. */
  readonly batchSize: number;
  /** Updates in the whole run, for schedules of per-step values. */
  readonly totalSteps: number;
  /** Updates per epoch, for what a method does by epoch (freezing a layer for the first one). */
  readonly stepsPerEpoch: number;
  readonly seed: number;
}

/** Training settings a method's recipe may set, beside its own options. */
export interface Recipe {
  /** The data, where the method needs another than the preset's (MLM: text). */
  readonly dataset?: DatasetConfig;
  /** The encoder, where the method needs another than the preset's (MAE: a ViT). */
  readonly backbone?: BackboneConfig;
  /** The text encoder of a method that pairs images with text (CLIP). */
  readonly text?: TextEncoderConfig;
  /** The training views' augmentation (the base recipe the method's views start from). */
  readonly augmentation?: TrainingRecipe;
  readonly optimizer?: OptimizerConfig["name"];
  readonly betas?: readonly [number, number];
  readonly optimizerMomentum?: number;
  readonly learningRate?: number;
  readonly weightDecay?: number;
  readonly excludeBiasAndNorm?: boolean;
  readonly batchSize?: number;
  readonly warmupEpochs?: number;
  readonly schedule?: "cosine" | "constant";
}

/** A self-supervised method. `O` is the type of its options. */
export interface Method<O extends object = Record<string, unknown>> {
  /** The name `--method` takes. */
  readonly name: string;
  /** The name people know it by, e.g. "MoCo v2". */
  readonly title: string;
  /** Which network's encoder the checkpoint's backbone is (e.g. "the query encoder"). */
  readonly encoder: string;
  readonly defaults: O;
  readonly options: readonly MethodOption[];
  /**
   * Settings for public recipes: `cifar` is solo-learn's scripts/pretrain/cifar/<method>.yaml
   * where one exists, `synthetic` what the built-in default preset needs beyond the defaults.
   */
  readonly recipes: {
    /** Absent for a method that does not train on images. */
    readonly cifar?: Recipe & Partial<O>;
    readonly synthetic?: Recipe & Partial<O>;
  };
  /** What it trains on: images (the default), text, or images with captions. */
  readonly modality?: "images" | "text" | "captioned images";
  /** Refuses options no run can use (a `SelfsupError` naming the flag); returns them typed. */
  validate(options: Readonly<Record<string, unknown>>, batchSize: number): O;
  /** The views of each image a step needs, made from the run's base recipe (none for text). */
  views(options: O, base: AugmentConfig): ViewGroup[];
  /** The token sequences of each item a step needs, for an encoder of text; absent: none. */
  text?(options: O, encoder: TextEncoderConfig): TextViews;
  /**
   * The backbone the method trains, from the run's: a method may need more of it than the
   * run asked for (MLM's next-sentence pairs: segment embeddings). Absent: the run's.
   */
  backbone?(options: O, backbone: BackboneConfig): BackboneConfig;
  /** Builds the networks and extra state on the GPU, randomly initialised from the seed. */
  build(context: BuildContext, options: O): MethodRun;
}

/** What a training step gets from each batch, as tensors the trainer writes before it runs. */
export interface StepInputs {
  /** One tensor per view group: [count·N, 3, h, w], view v of image k at row v·N + k. */
  readonly views: readonly Tensor[];
  /** The items' class labels, i32 [N]: unused by self-supervised methods. */
  readonly labels: Tensor;
  /** The items' token sequences, for methods with {@link Method.text} (text_batcher.ts). */
  readonly text?: TextInputs;
}

/** A batch of token sequences on the GPU: the tensors of a `TokenBatch`. */
export interface TextInputs {
  /** u32 [N, T]. */
  readonly tokens: Tensor;
  /** With masking: u32 [N, P] chosen positions and i32 [N, P] their original tokens (−1: none). */
  readonly positions?: Tensor;
  readonly targets?: Tensor;
  /** With pairs: u32 [N, T] segment of each token, i32 [N] whether B follows A. */
  readonly segments?: Tensor;
  readonly isNext?: Tensor;
}

/** What a step's inputs are made of: groups of image views, token sequences, or both. */
export interface InputSpec {
  readonly groups: readonly ViewGroup[];
  readonly text?: TextViews;
  /** Items per step (N). */
  readonly batchSize: number;
}

/** Records the input tensors of a training step of `spec`'s shape. */
export function createStepInputs(program: Program, spec: InputSpec): StepInputs {
  const n = spec.batchSize;
  const views = spec.groups.map(({ count, augment }, i) =>
    program.tensor([count * n, 3, augment.height, augment.width], `views ${i + 1}`)
  );
  const labels = program.tensor([n], "labels", "i32");
  const text = spec.text;
  if (!text) return { views, labels };
  const t = text.sequenceLength, p = predictionsPerSequence(text);
  return {
    views,
    labels,
    text: {
      tokens: program.tensor([n, t], "tokens", "u32"),
      ...(text.masking
        ? {
          positions: program.tensor([n, p], "chosen positions", "u32"),
          targets: program.tensor([n, p], "chosen tokens", "i32"),
        }
        : {}),
      ...(text.pairs
        ? {
          segments: program.tensor([n, t], "segments", "u32"),
          isNext: program.tensor([n], "next-sentence labels", "i32"),
        }
        : {}),
    },
  };
}

/** Writes a batch into a step's inputs (made by {@link createStepInputs} for its shape). */
export function writeStepInputs(gpu: Gpu, inputs: StepInputs, batch: TrainingBatch): void {
  batch.groups.forEach((values, g) => gpu.write(inputs.views[g], values));
  gpu.write(inputs.labels, batch.labels);
  const text = inputs.text;
  if (!text) return;
  const given = batch.text;
  if (!given) throw new Error("The step reads text, the batch has none");
  gpu.write(text.tokens, given.tokens);
  if (text.positions) gpu.write(text.positions, given.positions!);
  if (text.targets) gpu.write(text.targets, given.targets!);
  if (text.segments) gpu.write(text.segments, given.segments!);
  if (text.isNext) gpu.write(text.isNext, given.isNext!);
}

/**
 * Images masked and reconstructed by a masked-image method: four arrays [n, 3, H, W], all
 * normalised as the run's views are (un-normalise with the run's mean and std to see them).
 */
export interface Reconstructions {
  /** [n, 3, H, W]. */
  readonly shape: readonly [number, number, number, number];
  /** The images as given. */
  readonly original: Float32Array;
  /** The images with their masked patches set to zero (the dataset's mean colour). */
  readonly masked: Float32Array;
  /**
   * The decoder's prediction of every patch, visible ones included; when the method predicts
   * normalised patches, each is scaled back with the mean and standard deviation of the
   * original patch, as its loss normalised the target.
   */
  readonly reconstruction: Float32Array;
  /** The original's visible patches with the reconstruction of the masked ones. */
  readonly pasted: Float32Array;
}

/** A method's networks and state on the GPU, and how to record its training step. */
export interface MethodRun {
  /** The encoder evaluation uses; its entries are `backbone.*` in {@link trainable}. */
  readonly backbone: Backbone;
  /** The parameters the optimizer updates. */
  readonly trainable: ParameterBlock;
  /**
   * Everything else a checkpoint must hold to resume exactly, by name: blocks of networks
   * that are not trained by gradient (a target or key encoder), tensors (a queue).
   */
  readonly state: ReadonlyMap<string, ParameterBlock | Tensor>;
  /**
   * Records the forward and backward passes of a step; parameter gradients accumulate into
   * the trainable block's, which the caller zeroes first. Returns the loss [1] and the
   * embeddings [M, D] the collapse monitor watches.
   */
  record(program: Program, inputs: StepInputs): { loss: Tensor; embeddings: Tensor };
  /**
   * A learning-rate scale per trainable parameter, by name, as a PyTorch parameter group's
   * (BYOL's faster predictor); every parameter moves at the run's rate if absent.
   */
  lrScale?(parameter: string): number;
  /**
   * Records what the method does to the parameters' gradients between its backward passes and
   * the optimizer's update (DINO's clipping), if anything: by then they are the loss's own,
   * the loss scale of an f16 backbone divided out of them.
   */
  recordBeforeUpdate?(program: Program): void;
  /** Records what follows the optimizer's update in a step (a moving average), if anything. */
  recordAfterUpdate?(program: Program): void;
  /** Writes the per-step values of the step after `step` updates, before it is submitted. */
  prepare(step: number): void;
  /**
   * The trainable parameters (by name) the optimizer must leave untouched, values and state,
   * in the step after `step` updates — as PyTorch's optimizers skip a parameter whose
   * gradient is None: DINO's last layer and SwAV's prototypes in the first epoch. The
   * trainer passes them to `Optimizer.freeze` before each submit. None if absent.
   */
  frozen?(step: number): readonly string[];
  /**
   * The loss a collapsed run sits at, if the method has one: SwAV's and DINO's loss is ln K
   * when the predictions and targets are uniform over the K outputs (identical embeddings get
   * equipartitioned codes), and a SwAV run whose loss stays there learns nothing — the known
   * failure with small batches — even where the embeddings' spread has not fallen. Both
   * start near it and a run that learns passes through it, so the trainer stops a run only
   * when an epoch past the first sat there throughout (its mean and its last read).
   */
  readonly collapseLoss?: number;
  /** What to try after a collapse, in the method's own flags (else: a lower --lr). */
  readonly collapseHint?: string;
  /**
   * For methods that reconstruct their input (MAE): masks a few images and reconstructs them
   * with the current parameters, for people to look at (`reconstructionsPng` draws them).
   * `images` are [n, 3, H, W] un-augmented images normalised as the run's views are; the
   * mask of image k is the same at every call. Records and runs a program of its own, so
   * call it between steps.
   */
  preview?(images: Float32Array, count: number): Promise<Reconstructions>;
  /**
   * Measures what the method itself predicts on held-out data, by name (MLM: the accuracy of
   * its predictions of masked tokens, and of the unigram baseline). Records and runs
   * programs of its own, so call it between steps.
   */
  evaluate?(data: MethodEvaluationData): Promise<Record<string, number>>;
  /** Frees the GPU memory of every block and tensor. */
  destroy(): void;
}

/**
 * The optimizer of a method's run: `config` over its trainable block, at the learning-rate
 * scales the run gives its parameters.
 */
export function createMethodOptimizer(
  gpu: Gpu,
  run: MethodRun,
  config: OptimizerConfig,
): Optimizer {
  return createOptimizer(gpu, run.trainable, {
    ...config,
    ...(run.lrScale ? { lrScale: run.lrScale } : {}),
  });
}

/**
 * The loss scale of a run whose backbone computes in f16 (see LossScale), given to that
 * backbone; none for a backbone in f32.
 */
export function createLossScale(gpu: Gpu, run: MethodRun): LossScale | undefined {
  if (!run.backbone.useLossScale) return undefined;
  const lossScale = new LossScale(gpu, run.trainable, "backbone.");
  run.backbone.useLossScale(lossScale.scale);
  return lossScale;
}

/**
 * Records one training step of a run: gradients zeroed, the method's forward and backward
 * passes, the loss scale divided out of the gradients where the backbone trains in f16, what
 * the method does to the gradients, the optimizer's update — guarded by the loss scale's
 * overflow check — and what the method does after the update. Returns the method's loss and
 * embeddings.
 */
export function recordTrainingStep(
  program: Program,
  run: MethodRun,
  optimizer: Optimizer,
  inputs: StepInputs,
  lossScale?: LossScale,
): { loss: Tensor; embeddings: Tensor } {
  program.clear(run.trainable.grads);
  const step = run.record(program, inputs);
  lossScale?.recordUnscale(program, run.trainable.grads);
  run.recordBeforeUpdate?.(program);
  if (lossScale) lossScale.recordGuarded(program, () => optimizer.record(program));
  else optimizer.record(program);
  run.recordAfterUpdate?.(program);
  return step;
}

/** The data a method's own evaluation reads: the run's training and held-out splits. */
export interface MethodEvaluationData {
  readonly train: Dataset;
  readonly test: Dataset;
  readonly seed: number;
  /** What images are normalised with. */
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  /** Items per forward pass. */
  readonly batchSize: number;
  /** An encoder's eval-mode features [N, featureDim] of a dataset's items, in order. */
  extract(encoder: Backbone, dataset: Dataset): Promise<Float32Array>;
}

/**
 * The options of a projection head Linear–ReLU–Linear whose hidden size defaults to the
 * backbone's feature size (SimCLR's and MoCo v2's heads).
 */
export const projectionHeadOptions: readonly MethodOption[] = [
  {
    key: "projectionDim",
    flag: "--projection-dim",
    kind: "positiveInteger",
    description: "output size of the projection head",
  },
  {
    key: "hiddenDim",
    flag: "--hidden-dim",
    kind: "positiveInteger",
    description: "hidden size of the projection head (default: the backbone's feature size)",
    optional: true,
  },
];

/**
 * The options of a moving average on a cosine schedule: MoCo's key encoder, BYOL's target
 * network, DINO's teacher.
 */
export const momentumOptions: readonly MethodOption[] = [
  {
    key: "momentum",
    flag: "--momentum",
    kind: "fraction",
    description: "moving-average rate of the key encoder, target or teacher at the start",
  },
  {
    key: "finalMomentum",
    flag: "--final-momentum",
    kind: "fraction",
    description: "moving-average rate at the end (cosine schedule)",
  },
];

/**
 * What solo-learn's CIFAR recipes with LARS share (scripts/pretrain/cifar/*.yaml): batch 256,
 * biases and norms excluded from decay and adaptation, its default 10 warm-up epochs, cosine.
 */
export const soloLarsRecipe: Recipe = {
  optimizer: "lars",
  excludeBiasAndNorm: true,
  batchSize: 256,
  warmupEpochs: 10,
  schedule: "cosine",
};

/** The keys of {@link Recipe} that make the optimizer and its learning-rate schedule. */
export const optimizerRecipeKeys: readonly (keyof Recipe)[] = [
  "optimizer",
  "betas",
  "optimizerMomentum",
  "learningRate",
  "weightDecay",
  "excludeBiasAndNorm",
  "warmupEpochs",
  "schedule",
];

/** The keys of {@link Recipe}: what a recipe sets beside the method's own options. */
export const recipeKeys: readonly (keyof Recipe)[] = [
  "dataset",
  "backbone",
  "text",
  "augmentation",
  "batchSize",
  ...optimizerRecipeKeys,
];

/** Option checks shared by the methods: each names its flag in the error. */
export const check = {
  positiveInteger(value: unknown, flag: string): number {
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new SelfsupError(`${flag} must be a whole number ≥ 1, got ${value}`);
    }
    return value as number;
  },
  nonNegativeInteger(value: unknown, flag: string): number {
    if (!Number.isInteger(value) || (value as number) < 0) {
      throw new SelfsupError(`${flag} must be a whole number ≥ 0, got ${value}`);
    }
    return value as number;
  },
  positiveNumber(value: unknown, flag: string): number {
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
      throw new SelfsupError(`${flag} must be a number > 0, got ${value}`);
    }
    return value;
  },
  nonNegativeNumber(value: unknown, flag: string): number {
    if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
      throw new SelfsupError(`${flag} must be a number ≥ 0, got ${value}`);
    }
    return value;
  },
  fraction(value: unknown, flag: string): number {
    if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
      throw new SelfsupError(`${flag} must be a number in [0, 1], got ${value}`);
    }
    return value;
  },
  boolean(value: unknown, flag: string): boolean {
    if (typeof value !== "boolean") throw new SelfsupError(`${flag} must be true or false`);
    return value;
  },
  choice(value: unknown, flag: string, choices: readonly string[] = []): string {
    if (typeof value !== "string" || !choices.includes(value)) {
      throw new SelfsupError(`${flag} must be one of ${choices.join(", ")}, got ${value}`);
    }
    return value;
  },
};

/**
 * Refuses a moving-average schedule that falls (MoCo's key encoder, BYOL's target, DINO's
 * teacher): `--final-momentum` below `--momentum`.
 */
export function checkMomentumSchedule(options: { momentum: number; finalMomentum: number }): void {
  if (options.finalMomentum < options.momentum) {
    throw new SelfsupError(
      `--final-momentum (${options.finalMomentum}) must be at least --momentum (${options.momentum})`,
    );
  }
}

/**
 * Checks `options` (a run's `method` settings, name left out) against a method's declared
 * options: unknown keys are refused, missing ones take the defaults, every value is checked
 * by its kind.
 */
export function checkOptions<O extends object>(
  method: Pick<Method<O>, "title" | "defaults" | "options">,
  options: Readonly<Record<string, unknown>>,
): O {
  const known = new Map(method.options.map((o) => [o.key, o]));
  for (const key of Object.keys(options)) {
    if (key !== "name" && !known.has(key)) {
      throw new SelfsupError(`${method.title} has no option ${key}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const option of method.options) {
    const value = options[option.key] ?? (method.defaults as Record<string, unknown>)[option.key];
    if (value === undefined && option.optional) continue;
    out[option.key] = check[option.kind](value, option.flag, option.choices);
  }
  return out as O;
}

/**
 * Fills a block with its layers' initial values from the run's seed (a stream of its own,
 * so that initialisation does not depend on how much randomness the data used);
 * `initializerOf` may replace a parameter's own initializer.
 */
export function initializeBlock(
  block: ParameterBlock,
  seed: number,
  initializerOf?: (name: string, parameter: Parameter) => Initializer,
): void {
  const random = new Random(seed, 0x1417);
  block.initialize(() => random.float(), initializerOf);
}
