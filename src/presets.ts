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
  evaluation: {
    // 5,000 images give 19 probe steps an epoch: 50 epochs let the probe converge.
    probe: { epochs: 50, learningRate: 1e-3, batchSize: 256 },
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
 * - `seed`: the seed project's recipe — ResNet-18 with the ImageNet stem on CIFAR-10, batch
 *   64, Adam at 1e-3, temperature 0.5, 10 epochs, then a linear probe trained with Adam for
 *   5 epochs.
 */
export const presets: Record<"default" | "seed", PretrainConfig> = {
  default: defaultPreset,
  // What the seed sets differently from the default.
  seed: {
    ...defaultPreset,
    dataset: { name: "cifar10" },
    width: 64,
    temperature: 0.5,
    epochs: 10,
    learningRate: 1e-3,
    evaluation: {
      ...defaultPreset.evaluation!,
      probe: { epochs: 5, learningRate: 1e-3, batchSize: 256 },
    },
  },
};
