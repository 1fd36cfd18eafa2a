import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { crossEntropy } from "../loss/cross_entropy.ts";
import { createBackbone } from "../nn/backbone.ts";
import { sliceRows } from "../nn/concat.ts";
import { Linear } from "../nn/linear.ts";
import { prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { rotateImages } from "../nn/rotate.ts";
import { checkOptions, initializeBlock, type Method, type StepInputs } from "./method.ts";

/** Rotation prediction has no options of its own. */
export type RotationOptions = Record<never, never>;

/** The rotations predicted: 0°, 90°, 180° and 270°. */
const rotations = 4;

/**
 * Rotation prediction (Gidaris et al. 2018, "Unsupervised Representation Learning by
 * Predicting Image Rotations"; gidariss/FeatureLearningRotNet): each image of the batch is
 * turned by 0°, 90°, 180° and 270° (all four in one batch, as RotNet's loader does), and a
 * linear head on the backbone's features classifies the rotation, trained with the mean
 * cross-entropy over the 4N rotated images. The views must be square.
 */
export const rotation: Method<RotationOptions> = {
  name: "rotation",
  title: "Rotation prediction",
  encoder: "the backbone",
  defaults: {},
  options: [],
  recipes: {
    // No solo-learn recipe: RotNet's CIFAR-10 one (config/CIFAR10_RotNet_NIN4blocks.py, SGD
    // 0.1 with Nesterov momentum 0.9, weight decay 5e-4, batch 128, steps at epochs 60, 120
    // and 160 of 200), with a cosine decay for its steps.
    cifar: {
      optimizer: "sgd",
      optimizerMomentum: 0.9,
      learningRate: 0.1,
      weightDecay: 5e-4,
      batchSize: 128,
      schedule: "cosine",
    },
  },
  validate(options) {
    return checkOptions(this, options);
  },
  views(_options, base) {
    return [{ count: 1, augment: base }];
  },
  build({ gpu, backbone: config, batchSize, seed }) {
    const backbone = createBackbone(config);
    const head = new Linear(backbone.featureDim, rotations);
    const trainable = new ParameterBlock(gpu, [
      ...prefixed("backbone", backbone),
      ...prefixed("head", head),
    ]);
    initializeBlock(trainable, seed);
    // Row r·N + k of the rotated batch is image k turned by r·90°.
    const labels = gpu.tensor([rotations * batchSize], "rotation labels", "i32");
    gpu.write(
      labels,
      Int32Array.from({ length: labels.size }, (_, i) => Math.floor(i / batchSize)),
    );

    return {
      backbone,
      trainable,
      state: new Map(),
      record(program: Program, { views: [view] }: StepInputs) {
        const n = view.shape[0];
        if (n !== batchSize) {
          throw new Error(`Rotation prediction was built for batches of ${batchSize}, got ${n}`);
        }
        const rotated = rotateImages(program, view);
        const features = backbone.forward(program, rotated, { train: true, inputGrad: false });
        const logits = head.forward(program, features.output, { train: true, inputGrad: true });
        const { loss, gradInput } = crossEntropy(program, logits.output, labels);
        features.backward(program, logits.backward(program, gradInput)!);
        // The features of the upright images.
        const embeddings: Tensor = sliceRows(program, features.output, 0, n);
        program.keep(loss, embeddings);
        return { loss, embeddings };
      },
      prepare() {},
      destroy() {
        gpu.release(labels.buffer);
        trainable.destroy();
      },
    };
  },
};
