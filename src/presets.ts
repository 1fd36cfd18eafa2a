import type { PretrainConfig } from "./train.ts";

const defaultPreset: PretrainConfig = {
  method: "simclr",
  dataset: { name: "synthetic" },
  // The ImageNet stem shrinks 32×32 images to 8×8 before layer1: a width-16 network runs
  // at ~150 images/s on two CPU cores, and 5 epochs of the 5,000 images learn shapes well.
  stem: "imagenet",
  width: 16,
  projectionDim: 128,
  // A lower temperature and a higher rate than the seed's learn faster at batch 64.
  temperature: 0.2,
  epochs: 5,
  batchSize: 64,
  optimizer: "adam",
  learningRate: 2e-3,
  weightDecay: 0,
  warmupEpochs: 0,
  schedule: "constant",
  seed: 0,
  augmentation: "simclr-seed",
  normalization: null,
  evaluation: {
    // 5,000 images give 19 probe steps an epoch: 50 epochs let the probe converge.
    // Standardised features let one learning rate fit every backbone.
    probe: { epochs: 50, learningRate: 1e-3, batchSize: 256, features: "standardized" },
    knn: { k: 200, temperature: 0.1 },
    batchSize: 256,
    seed: 0,
  },
  baseline: true,
};

/**
 * Named starting configurations of `deno task pretrain`:
 *
 * - `default`: the built-in synthetic set with a narrow ResNet-18, sized so that the bare
 *   command finishes in minutes on a CPU through a software WebGPU adapter and still shows
 *   features well above a random network's.
 * - `seed`: the seed project's recipe — ResNet-18 (ImageNet stem, width 64) on CIFAR-10,
 *   batch 64, Adam at 1e-3, temperature 0.5, 10 epochs, its augmentations and its (0.5, 0.5,
 *   0.5) normalisation, then its linear probe: Adam at 1e-3 for 5 epochs at batch 64 on raw
 *   features.
 */
export const presets: Record<"default" | "seed", PretrainConfig> = {
  default: defaultPreset,
  // What the seed sets differently from the default; tests/seed_preset_test.ts checks every
  // field against the seed's values, and README's "The seed's recipe" names what still differs.
  seed: {
    ...defaultPreset,
    dataset: { name: "cifar10" },
    width: 64,
    temperature: 0.5,
    epochs: 10,
    learningRate: 1e-3,
    augmentation: "seed",
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    evaluation: {
      ...defaultPreset.evaluation!,
      probe: { epochs: 5, learningRate: 1e-3, batchSize: 64, features: "raw" },
    },
  },
};
