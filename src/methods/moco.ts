import { Random } from "../data/random.ts";
import type { Program } from "../gpu/gpu.ts";
import { queueWriteKernel } from "../gpu/kernels/embedding.ts";
import { StepValues } from "../gpu/step_values.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { infoNceWithQueue } from "../loss/info_nce.ts";
import { add } from "../nn/add.ts";
import { gatherRows } from "../nn/gather.ts";
import { l2NormalizeBackward, l2NormalizeForward } from "../nn/l2_normalize.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { emaRate, EmaUpdate } from "../optim/ema.ts";
import { SelfsupError } from "../errors.ts";
import {
  checkMomentumSchedule,
  checkOptions,
  initializeBlock,
  type Method,
  momentumOptions,
  projectionHeadOptions,
  type StepInputs,
} from "./method.ts";
import { SimclrModel } from "./simclr.ts";

/** MoCo v2's options. */
export interface MocoOptions {
  readonly temperature: number;
  readonly projectionDim: number;
  readonly hiddenDim?: number;
  /** Negatives in the queue, K; a multiple of the keys enqueued per step. */
  readonly queueSize: number;
  /** The key encoder's moving-average rate at the start; `finalMomentum` at the end. */
  readonly momentum: number;
  readonly finalMomentum: number;
  /** Groups of the batch with batch-norm statistics of their own (1: ordinary batch norm). */
  readonly bnSplits: number;
  /** Both views as queries and as keys, the two losses summed (the CIFAR demo's option). */
  readonly symmetric: boolean;
}

/** Streams of the permutations of the key batch and of the initial queue, apart from others. */
const shuffleStream = 0x6d6f636f;
const queueStream = 0x71756575;

/**
 * MoCo v2 (He et al. 2020; Chen et al. 2020): a query encoder with an MLP head trained by
 * InfoNCE against the key of the other view and a queue of earlier keys; the key encoder is
 * a moving average of the query encoder (updated after each optimiser step, which is the
 * same sequence as the paper's update before the key forward: the first is a no-op), with
 * no gradient. Keys enter the queue after the logits have used it. Batch norm runs in
 * `bnSplits` groups, and the key batch is shuffled before the key encoder and unshuffled
 * after it — the authors' CIFAR demo's single-device emulation of shuffle-BN, which keeps
 * batch statistics from leaking which key belongs to which query.
 */
export const moco: Method<MocoOptions> = {
  name: "moco",
  title: "MoCo v2",
  encoder: "the query encoder",
  defaults: {
    temperature: 0.2,
    projectionDim: 128,
    queueSize: 4096,
    momentum: 0.99,
    finalMomentum: 0.99,
    bnSplits: 8,
    symmetric: false,
  },
  options: [
    {
      key: "temperature",
      flag: "--temperature",
      kind: "positiveNumber",
      description: "InfoNCE temperature",
    },
    ...projectionHeadOptions,
    {
      key: "queueSize",
      flag: "--queue-size",
      kind: "positiveInteger",
      description: "negative keys in the queue",
    },
    ...momentumOptions,
    {
      key: "bnSplits",
      flag: "--bn-splits",
      kind: "positiveInteger",
      description: "batch-norm groups of the batch (emulated shuffle-BN)",
    },
    {
      key: "symmetric",
      flag: "--symmetric",
      kind: "boolean",
      description: "symmetric loss: both views as queries",
    },
  ],
  recipes: {
    // solo-learn scripts/pretrain/cifar/mocov2plus.yaml (symmetric_weak augmentations); the
    // queue follows the authors' CIFAR demo, where 4096 keys saturate CIFAR-10.
    cifar: {
      augmentation: "solo-symmetric-weak",
      temperature: 0.2,
      projectionDim: 256,
      hiddenDim: 2048,
      queueSize: 4096,
      momentum: 0.99,
      finalMomentum: 0.999,
      optimizer: "sgd",
      optimizerMomentum: 0.9,
      learningRate: 0.3,
      weightDecay: 1e-4,
      batchSize: 256,
      warmupEpochs: 10,
      schedule: "cosine",
    },
    // A narrow network on the synthetic set, from a sweep of 5-epoch runs there: at 390
    // steps a 4096-key queue holds keys from encoders too old to compare against, the
    // emulated shuffle-BN's groups of 8 are too small for batch norm, and T 0.2 with Adam
    // 2e-3 barely moves the probe.
    synthetic: {
      hiddenDim: 512,
      temperature: 0.1,
      queueSize: 1024,
      bnSplits: 1,
      learningRate: 1e-3,
    },
  },
  validate(options, batchSize) {
    const checked = checkOptions(this, options);
    checkMomentumSchedule(checked);
    const enqueued = checked.symmetric ? 2 * batchSize : batchSize;
    if (checked.queueSize % enqueued !== 0) {
      throw new SelfsupError(
        `--queue-size ${checked.queueSize} must be a multiple of the ${enqueued} keys enqueued ` +
          `each step (--batch-size${checked.symmetric ? " × 2, symmetric" : ""})`,
      );
    }
    if (batchSize % checked.bnSplits !== 0) {
      throw new SelfsupError(
        `--batch-size ${batchSize} must be a multiple of --bn-splits ${checked.bnSplits}`,
      );
    }
    return checked;
  },
  views(_options, base) {
    // Two groups of one view, so that each view is its own batch, as MoCo runs them.
    return [{ count: 1, augment: base }, { count: 1, augment: base }];
  },
  build({ gpu, backbone, batchSize, totalSteps, seed }, options) {
    const architecture = { backbone, ...options };
    const query = new SimclrModel(architecture);
    const key = new SimclrModel(architecture);
    const trainable = new ParameterBlock(gpu, query.entries());
    const keyBlock = new ParameterBlock(gpu, key.entries());
    initializeBlock(trainable, seed);
    initializeBlock(keyBlock, seed);
    const ema = new EmaUpdate(gpu, keyBlock, trainable);
    ema.copy();
    const d = options.projectionDim;
    const queue = gpu.tensor([options.queueSize, d], "MoCo queue");
    gpu.write(queue, randomUnitRows(options.queueSize, d, seed));
    const zeros = gpu.tensor([options.queueSize], "MoCo zero bias");
    gpu.write(zeros, new Float32Array(options.queueSize));
    const passes = options.symmetric ? 2 : 1;
    // Where each direction's keys enter the queue this step.
    const slots = Array.from(
      { length: passes },
      () => new StepValues(gpu, ["slot"], "MoCo queue slot"),
    );
    // Per direction: the permutation of the key batch and its inverse.
    const shuffles = Array.from({ length: passes }, (_, i) => ({
      forward: gpu.tensor([batchSize], `MoCo key shuffle ${i + 1}`, "u32"),
      inverse: gpu.tensor([batchSize], `MoCo key unshuffle ${i + 1}`, "u32"),
    }));
    const n = batchSize;
    const training = { train: true, inputGrad: true, batchNormSplits: options.bnSplits };

    return {
      backbone: query.backbone,
      trainable,
      state: new Map<string, ParameterBlock | Tensor>([["key", keyBlock], ["queue", queue]]),
      record(program: Program, { views }: StepInputs) {
        // Queries: unit projections of each view that is a query, with their backward passes.
        const queries = views.slice(0, passes).map((view) => {
          const features = query.backbone.forward(program, view, { ...training, inputGrad: false });
          const projected = query.projector.forward(program, features.output, training);
          return { features, projected, ...l2NormalizeForward(program, projected.output) };
        });
        // Keys: the other view of each, through the key encoder in a shuffled order.
        const keys = queries.map((_, i) => {
          const { forward, inverse } = shuffles[i];
          const shuffled = gatherRows(program, forward, views[1 - i]);
          const features = key.backbone.forward(program, shuffled, {
            ...training,
            inputGrad: false,
          });
          const projected = key.projector.forward(program, features.output, training);
          return l2NormalizeForward(program, gatherRows(program, inverse, projected.output)).y;
        });
        let loss: Tensor | undefined;
        queries.forEach((q, i) => {
          const out = infoNceWithQueue(program, q.y, keys[i], queue, zeros, {
            temperature: options.temperature,
            scale: 1 / n,
          });
          loss = loss ? add(program, loss, out.loss) : out.loss;
          const gradProjection = l2NormalizeBackward(program, q.y, q.norms, out.gradQueries);
          q.features.backward(program, q.projected.backward(program, gradProjection)!);
        });
        // The queue changes only after both the logits and the gradient have read it.
        const enqueued = options.symmetric ? [keys[1], keys[0]] : keys;
        enqueued.forEach((k, i) => {
          program.dispatch(queueWriteKernel, [slots[i].tensor, k, queue], Math.ceil(k.size / 256), [
            n,
            d,
            options.queueSize,
          ]);
        });
        program.keep(loss!, queries[0].projected.output);
        return { loss: loss!, embeddings: queries[0].projected.output };
      },
      recordAfterUpdate(program) {
        ema.record(program);
      },
      prepare(step) {
        slots.forEach((slot, i) =>
          slot.write({ slot: ((step * passes + i) * n) % options.queueSize })
        );
        ema.prepare(emaRate(step, totalSteps, options.momentum, options.finalMomentum));
        mocoKeyShuffles(seed, step, n, passes).forEach((permutation, i) => {
          const undo = new Uint32Array(n);
          permutation.forEach((p, j) => (undo[p] = j));
          gpu.write(shuffles[i].forward, Uint32Array.from(permutation));
          gpu.write(shuffles[i].inverse, undo);
        });
      },
      destroy() {
        for (const t of [queue, zeros, ...shuffles.flatMap((s) => [s.forward, s.inverse])]) {
          gpu.release(t.buffer);
        }
        for (const slot of slots) slot.destroy();
        ema.destroy();
        trainable.destroy();
        keyBlock.destroy();
      },
    };
  },
};

/**
 * The permutations of the key batch in the step after `step` updates, one per direction:
 * a function of the seed and the step only, so a resumed run shuffles as the uninterrupted
 * one would.
 */
export function mocoKeyShuffles(
  seed: number,
  step: number,
  batchSize: number,
  directions: number,
): Int32Array[] {
  const random = new Random(seed, shuffleStream, step);
  return Array.from({ length: directions }, () => random.permutation(batchSize));
}

/** K random unit vectors of dimension D, as MoCo initialises its queue. */
function randomUnitRows(rows: number, cols: number, seed: number): Float32Array {
  const random = new Random(seed, queueStream);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      // Box–Muller: a Gaussian direction is uniform on the sphere once normalised.
      const v = Math.sqrt(-2 * Math.log(1 - random.float())) *
        Math.cos(2 * Math.PI * random.float());
      out[i * cols + j] = v;
      sum += v * v;
    }
    const norm = Math.sqrt(sum);
    for (let j = 0; j < cols; j++) out[i * cols + j] /= norm;
  }
  return out;
}
