/**
 * selfsup: self-supervised learning on any WebGPU adapter, from Deno — hand-written WGSL
 * kernels for every layer's forward and backward pass, SimCLR on a ResNet-18, linear-probe
 * and kNN evaluation, and checkpoints that load into torchvision.
 *
 * Pre-train on the built-in synthetic set and read the probe accuracy:
 *
 * @example
 * ```ts ignore
 * import { presets, pretrain } from "./mod.ts";
 *
 * const summary = await pretrain(
 *   { ...presets.default, epochs: 1 },
 *   { out: "runs/library-example" },
 * );
 * console.log(summary.probe?.top1, summary.baseline?.probe?.top1);
 * ```
 *
 * Or drive the engine yourself: record one SimCLR step into a program and run it.
 *
 * @example
 * ```ts
 * import { createGpu, createOptimizer, Program, randomModel, recordSimclrStep } from "./mod.ts";
 *
 * const gpu = await createGpu();
 * const architecture = {
 *   method: "simclr", backbone: "resnet18", stem: "cifar", width: 4, projectionDim: 16, imageSize: 16,
 * } as const;
 * const { model, block } = randomModel(gpu, architecture, { mean: [0, 0, 0], std: [1, 1, 1] }, 0);
 * const optimizer = createOptimizer(gpu, block, { name: "adam" });
 * const step = new Program(gpu, "simclr step");
 * const views = step.tensor([2 * 4, 3, 16, 16], "views"); // 4 images, two views each
 * step.clear(block.grads);
 * const { loss } = recordSimclrStep(step, model, views, 0.5);
 * optimizer.record(step);
 * gpu.write(views, new Float32Array(views.size).map(() => Math.random()));
 * optimizer.prepare(1, 1e-3);
 * gpu.submit(step);
 * const [value] = await gpu.readF32(loss);
 * if (!Number.isFinite(value)) throw new Error("the loss should be finite");
 * ```
 *
 * @module
 */

// Training, evaluation and checkpoints.
export {
  pretrain,
  type PretrainConfig,
  type PretrainOptions,
  type PretrainSummary,
} from "./src/train.ts";
export { presets } from "./src/presets.ts";
export { evaluateBackbone, type Evaluation, type EvaluationConfig } from "./src/evaluate.ts";
export {
  extractFeatures,
  type Features,
  knnAccuracy,
  linearProbe,
  type ProbeFeatures,
  type ProbeResult,
} from "./src/probe.ts";
export {
  type Checkpoint,
  type CheckpointMeta,
  loadCheckpoint,
  saveCheckpoint,
} from "./src/checkpoint.ts";
export { type LoadedModel, loadModel, modelFromCheckpoint, randomModel } from "./src/model.ts";
export { SelfsupError } from "./src/errors.ts";

// Data.
export type { ImageDataset, Split } from "./src/data/dataset.ts";
export { limit, subset } from "./src/data/dataset.ts";
export { type DatasetConfig, loadDataset } from "./src/data/load.ts";
export { loadCifar } from "./src/data/cifar.ts";
export { loadImageFolder } from "./src/data/image_folder.ts";
export { syntheticDataset } from "./src/data/synthetic.ts";
export {
  type AugmentConfig,
  Augmenter,
  augmentPreset,
  CIFAR_MEAN,
  CIFAR_STD,
  type TrainingRecipe,
} from "./src/data/augment.ts";
export {
  evalBatches,
  type MultiViewBatch,
  MultiViewLoader,
  type MultiViewLoaderOptions,
} from "./src/data/batcher.ts";
export { multiCropGroups, type MultiCropOptions, type ViewGroup } from "./src/data/views.ts";
export { Random } from "./src/data/random.ts";

// Methods and models.
export { recordSimclrStep, type SimclrConfig, SimclrModel } from "./src/methods/simclr.ts";
export { BasicBlock, ResNet18, type ResNetConfig, type Stem } from "./src/nn/resnet.ts";
export {
  Block,
  VisionTransformer,
  type VitConfig,
  type VitPositions,
  vitSmallDefault,
  vitTiny,
} from "./src/nn/vit.ts";
export { Attention } from "./src/nn/attention.ts";
export { Mlp } from "./src/nn/mlp.ts";
export { LayerNorm } from "./src/nn/layer_norm.ts";
export { GELU } from "./src/nn/gelu.ts";
export { PatchEmbed } from "./src/nn/patch_embed.ts";
export { projectionHead } from "./src/nn/projection_head.ts";
export { Conv2d } from "./src/nn/conv2d.ts";
export { BatchNorm2d } from "./src/nn/batch_norm.ts";
export { MaxPool2d } from "./src/nn/max_pool.ts";
export { GlobalAvgPool } from "./src/nn/avg_pool.ts";
export { Linear } from "./src/nn/linear.ts";
export { ReLU } from "./src/nn/relu.ts";
export { Sequential } from "./src/nn/sequential.ts";
export type { Forward, ForwardOptions, Layer } from "./src/nn/module.ts";
export { Parameter, RunningStat } from "./src/nn/module.ts";
export { ParameterBlock } from "./src/nn/parameters.ts";

// Losses and optimizers.
export { ntXent } from "./src/loss/nt_xent.ts";
export { crossEntropy } from "./src/loss/cross_entropy.ts";
export { createOptimizer, type Optimizer, type OptimizerConfig } from "./src/optim/optimizer.ts";
export { constantLearningRate, learningRate, scaledLearningRate } from "./src/optim/schedule.ts";

// The GPU runtime.
export { createGpu, type GpuOptions } from "./src/gpu/device.ts";
export { type AdapterClass, Gpu, Program } from "./src/gpu/gpu.ts";
export { Tensor } from "./src/gpu/tensor.ts";
export { f32, type Kernel } from "./src/gpu/kernel.ts";
