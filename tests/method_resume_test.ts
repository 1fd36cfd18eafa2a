// `--resume` is bit-identical for every method on either backbone: a run interrupted after
// its first step (as Ctrl-C stops one) and resumed ends with the same checkpoint, bit for
// bit, as an uninterrupted run: trained parameters, the method's state (MoCo's key encoder
// and queue, BYOL's target, DINO's teacher and centre, SwAV's queue) and the optimizer's.
// The resumed part crosses the epoch boundary, where DINO's last layer and SwAV's prototypes
// are released, DINO's teacher temperature moves on, and the queues have been filled by the
// step before the interrupt and are read after it.
import type { BackboneConfig } from "../src/nn/backbone.ts";
import type { MethodConfig } from "../src/methods/method.ts";
import { presetConfig } from "../src/presets.ts";
import type { PretrainConfig } from "../src/train.ts";
import { assertResumesBitIdentical } from "./_resume.ts";

// 32 images in batches of 16: 2 steps an epoch, 2 epochs.
const run: Omit<PretrainConfig, "method" | "backbone"> = {
  ...presetConfig("default"),
  dataset: { name: "synthetic", limit: 32 },
  batchSize: 16,
  epochs: 2,
  workers: 1,
  evaluation: null,
  baseline: false,
};
const resnet: BackboneConfig = { name: "resnet18", stem: "imagenet", width: 4 };
const vit: BackboneConfig = {
  name: "vit",
  imageSize: 32,
  patchSize: 8,
  dim: 16,
  depth: 1,
  heads: 2,
};

const moco = (symmetric: boolean): MethodConfig => ({
  name: "moco",
  projectionDim: 8,
  hiddenDim: 16,
  // A queue of two batches: asymmetric, the interrupt leaves it half refilled.
  queueSize: 32,
  momentum: 0.99,
  finalMomentum: 0.999,
  bnSplits: 4,
  symmetric,
});
const byol: MethodConfig = {
  name: "byol",
  projectionDim: 8,
  hiddenDim: 16,
  predictorHiddenDim: 16,
  momentum: 0.99,
  finalMomentum: 1,
};
const dino = (localCrops: number): MethodConfig => ({
  name: "dino",
  outputDim: 24,
  hiddenDim: 16,
  bottleneckDim: 8,
  warmupTeacherEpochs: 2,
  clipGrad: 0.5,
  localCrops,
});
// The queue holds one step's embeddings from the start: full after step 1, read from step 2.
const swav = (localCrops: number): MethodConfig => ({
  name: "swav",
  projectionDim: 8,
  hiddenDim: 16,
  prototypes: 12,
  queueSize: 16,
  queueStartEpoch: 0,
  localCrops,
});

const cases: [string, MethodConfig, BackboneConfig, Partial<PretrainConfig>?][] = [
  ["MoCo v2", moco(false), resnet],
  ["MoCo v2 (symmetric)", moco(true), resnet],
  ["BYOL", byol, resnet],
  ["DINO (2 local crops)", dino(2), resnet],
  ["SwAV (2 local crops, a queue)", swav(2), resnet],
  ["rotation prediction", { name: "rotation" }, resnet],
  ["SimCLR on the ViT", { name: "simclr", projectionDim: 8, hiddenDim: 16 }, vit],
  ["MoCo v2 on the ViT", moco(false), vit],
  ["BYOL on the ViT", byol, vit],
  // At 2e-3 this tiny DINO's outputs collapse (rightly stopped) within its four steps.
  ["DINO on the ViT", dino(0), vit, { learningRate: 1e-4 }],
  ["SwAV on the ViT (a queue)", swav(0), vit],
  ["rotation prediction on the ViT", { name: "rotation" }, vit],
  ["MAE on the ViT", { name: "mae", decoderDim: 8, decoderDepth: 1, decoderHeads: 2 }, {
    ...vit,
    positions: "sincos",
  }],
];

for (const [title, method, backbone, settings] of cases) {
  Deno.test(`${title}: a run interrupted after its first step resumes bit-identical`, async () => {
    const config = { ...run, ...settings, method, backbone };
    await assertResumesBitIdentical(config, 1, { epoch: 0, batch: 1 });
  });
}
