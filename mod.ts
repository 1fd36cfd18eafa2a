/**
 * selfsup: self-supervised learning on any WebGPU adapter, from Deno — hand-written WGSL
 * kernels for every layer's forward and backward pass; SimCLR, MoCo v2, BYOL, DINO, SwAV,
 * rotation prediction and MAE on a ResNet-18 or a Vision Transformer, masked language
 * modelling (BERT, RoBERTa) on a text transformer, CLIP on images with captions;
 * linear-probe, kNN and fine-tuning evaluation; and
 * checkpoints that load into torchvision or timm.
 *
 * Pre-train on the built-in synthetic set and read the probe accuracy:
 *
 * @example
 * ```ts ignore
 * import { presetConfig, pretrain } from "./mod.ts";
 *
 * const summary = await pretrain(
 *   { ...presetConfig("default", "moco"), epochs: 1 },
 *   { out: "runs/library-example" },
 * );
 * console.log(summary.probe?.top1, summary.baseline?.probe?.top1);
 * ```
 *
 * Or drive the engine yourself: build a method's networks, record one training step into a
 * program and run it.
 *
 * @example
 * ```ts
 * import { augmentPreset, createGpu, createOptimizer, methods, Program } from "./mod.ts";
 *
 * const gpu = await createGpu();
 * const method = methods.byol;
 * const options = method.validate({ hiddenDim: 32, predictorHiddenDim: 32, projectionDim: 16 }, 4);
 * const run = method.build({
 *   gpu,
 *   backbone: { name: "resnet18", stem: "cifar", width: 4 },
 *   batchSize: 4,
 *   totalSteps: 10,
 *   stepsPerEpoch: 10,
 *   seed: 0,
 * }, options);
 * const optimizer = createOptimizer(gpu, run.trainable, { name: "adam" });
 * const step = new Program(gpu, "byol step");
 * const views = method.views(options, augmentPreset("simclr-seed", 16))
 *   .map((group, i) => step.tensor([group.count * 4, 3, 16, 16], `views ${i}`));
 * const labels = step.tensor([4], "labels", "i32");
 * step.clear(run.trainable.grads);
 * const { loss } = run.record(step, { views, labels });
 * optimizer.record(step);
 * run.recordAfterUpdate?.(step); // the target network's moving average
 * for (const v of views) gpu.write(v, new Float32Array(v.size).map(() => Math.random()));
 * run.prepare(0);
 * optimizer.prepare(1, 1e-3);
 * gpu.submit(step);
 * const [value] = await gpu.readF32(loss);
 * if (!Number.isFinite(value)) throw new Error("the loss should be finite");
 * run.destroy();
 * gpu.destroy();
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
export {
  finetune,
  type FinetuneConfig,
  finetuneDefaults,
  type FinetuneSummary,
} from "./src/finetune.ts";
export { presetConfig, type PresetName, presetNames } from "./src/presets.ts";
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
export {
  backboneFromCheckpoint,
  loadBackbone,
  type LoadedBackbone,
  randomBackbone,
} from "./src/model.ts";
export { SelfsupError } from "./src/errors.ts";

// Data.
export type { ImageDataset, Split } from "./src/data/dataset.ts";
export { limit, subset } from "./src/data/dataset.ts";
export {
  type Dataset,
  type DatasetConfig,
  type DatasetName,
  datasetNames,
  loadDataset,
} from "./src/data/load.ts";
export {
  isTextDataset,
  ListTextDataset,
  loadTextFolder,
  type TextDataset,
} from "./src/data/text.ts";
export { SYNTHETIC_TOPICS, syntheticText } from "./src/data/synthetic_text.ts";
export { type Tokenizer, type TokenizerName, tokenizerNamed } from "./src/data/tokenizer.ts";
export {
  documentBlocks,
  type MaskingConfig,
  packCorpus,
  type TextViews,
  type TokenBatch,
  type TokenBlocks,
  TokenLoader,
  TokenWriter,
} from "./src/data/text_batcher.ts";
export { loadCifar } from "./src/data/cifar.ts";
export { loadImageFolder } from "./src/data/image_folder.ts";
export { type CaptionedImages, syntheticCaptions, syntheticDataset } from "./src/data/synthetic.ts";
export {
  type CaptionedDataset,
  CaptionedLoader,
  hasCaptions,
  loadCaptionedFolder,
  withCaptions,
} from "./src/data/captions.ts";
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
  type TrainingBatch,
  type TrainingLoader,
} from "./src/data/batcher.ts";
export { multiCropGroups, type MultiCropOptions, type ViewGroup } from "./src/data/views.ts";
export { Random } from "./src/data/random.ts";

// Methods and models.
export {
  type BuildContext,
  type Method,
  type MethodConfig,
  type MethodOption,
  type MethodRun,
  type Recipe,
  type StepInputs,
  type TextInputs,
} from "./src/methods/method.ts";
export { methodNamed, methodNames, methods } from "./src/methods/registry.ts";
export { recordSimclrStep, simclr, type SimclrConfig, SimclrModel } from "./src/methods/simclr.ts";
export { moco, mocoKeyShuffles, type MocoOptions } from "./src/methods/moco.ts";
export { byol, type ByolOptions } from "./src/methods/byol.ts";
export { dino } from "./src/methods/dino.ts";
export { swav } from "./src/methods/swav.ts";
export { rotation } from "./src/methods/rotation.ts";
export { mae } from "./src/methods/mae.ts";
export { mlm, type MlmOptions } from "./src/methods/mlm.ts";
export { clip, type ClipOptions, clipPrompt } from "./src/methods/clip.ts";
export { textEncoderConfig, textSmallDefault } from "./src/methods/_text.ts";
export { buildClassifier, supervised, type SupervisedOptions } from "./src/methods/supervised.ts";
export {
  type Backbone,
  type BackboneConfig,
  createBackbone,
  describeBackbone,
} from "./src/nn/backbone.ts";
export { BasicBlock, ResNet18, type ResNetConfig, type Stem } from "./src/nn/resnet.ts";
export {
  Block,
  VisionTransformer,
  type VitConfig,
  type VitPositions,
  vitSmallDefault,
  vitTiny,
} from "./src/nn/vit.ts";
export { TextEncoder, type TextEncoderConfig } from "./src/nn/text_encoder.ts";
export { Embedding } from "./src/nn/embedding.ts";
export { type Pooling, sequencePool } from "./src/nn/sequence_pool.ts";
export { Attention } from "./src/nn/attention.ts";
export { Mlp } from "./src/nn/mlp.ts";
export { LayerNorm } from "./src/nn/layer_norm.ts";
export { GELU } from "./src/nn/gelu.ts";
export { PatchEmbed } from "./src/nn/patch_embed.ts";
export { projectionHead } from "./src/nn/projection_head.ts";
export { Conv2d } from "./src/nn/conv2d.ts";
export { BatchNorm1d, BatchNorm2d } from "./src/nn/batch_norm.ts";
export { L2Normalize } from "./src/nn/l2_normalize.ts";
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
export { maskedCrossEntropy } from "./src/loss/masked_cross_entropy.ts";
export { clipInitialLogitScale, clipLoss } from "./src/loss/clip.ts";
export { infoNceWithQueue } from "./src/loss/info_nce.ts";
export { normalizedRegression } from "./src/loss/cosine.ts";
export { createOptimizer, type Optimizer, type OptimizerConfig } from "./src/optim/optimizer.ts";
export { constantLearningRate, learningRate, scaledLearningRate } from "./src/optim/schedule.ts";
export { emaRate, EmaUpdate } from "./src/optim/ema.ts";

// The GPU runtime.
export { createGpu, type GpuOptions } from "./src/gpu/device.ts";
export { type AdapterClass, Gpu, Program } from "./src/gpu/gpu.ts";
export { Tensor } from "./src/gpu/tensor.ts";
export { StepValues } from "./src/gpu/step_values.ts";
export { f32, type Kernel } from "./src/gpu/kernel.ts";
