import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { normalizedRegression } from "../loss/cosine.ts";
import { add } from "../nn/add.ts";
import { type Backbone, type BackboneConfig, createBackbone } from "../nn/backbone.ts";
import { l2NormalizeBackward, l2NormalizeForward } from "../nn/l2_normalize.ts";
import { type Entry, prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { projectionHead } from "../nn/projection_head.ts";
import type { Sequential } from "../nn/sequential.ts";
import { emaRate, EmaUpdate } from "../optim/ema.ts";
import {
  checkMomentumSchedule,
  checkOptions,
  initializeBlock,
  type Method,
  momentumOptions,
  soloLarsRecipe,
  type StepInputs,
} from "./method.ts";

/** BYOL's options. */
export interface ByolOptions {
  readonly projectionDim: number;
  readonly hiddenDim: number;
  readonly predictorHiddenDim: number;
  /** The target's moving-average rate τ at the start and at the end (cosine schedule). */
  readonly momentum: number;
  readonly finalMomentum: number;
  /** Probability of solarising the second view (BYOL's asymmetric augmentation). */
  readonly solarize: number;
  /**
   * The predictor's learning rate as a multiple of the run's. Grill et al. (2020, §3.2) see
   * the slow target as what keeps the predictor near its optimum; a faster predictor is the
   * other way to keep it there (Tian et al. 2021 analyse the two together).
   */
  readonly predictorLrScale: number;
}

/** An encoder and a projector (Linear–BN–ReLU–Linear): BYOL's target network. */
class ByolNetwork {
  readonly backbone: Backbone;
  readonly projector: Sequential;

  constructor(backbone: BackboneConfig, options: ByolOptions) {
    this.backbone = createBackbone(backbone);
    this.projector = projectionHead(
      this.backbone.featureDim,
      options.hiddenDim,
      options.projectionDim,
      { batchNorm: true },
    );
  }

  entries(): Entry[] {
    return [...prefixed("backbone", this.backbone), ...prefixed("projector", this.projector)];
  }
}

/**
 * BYOL (Grill et al. 2020): an online network (encoder, projector, predictor) regresses the
 * target network's projection of the other view; the target is a moving average of the
 * online encoder and projector, τ rising from `momentum` to `finalMomentum` along a cosine,
 * updated after each optimiser step as solo-learn does. The loss, 2 − 2·cos, is symmetrised
 * (summed over both directions). Each view is its own batch for batch norm.
 */
export const byol: Method<ByolOptions> = {
  name: "byol",
  title: "BYOL",
  encoder: "the online encoder",
  defaults: {
    projectionDim: 256,
    hiddenDim: 4096,
    predictorHiddenDim: 4096,
    momentum: 0.99,
    finalMomentum: 1,
    solarize: 0.2,
    predictorLrScale: 1,
  },
  options: [
    {
      key: "projectionDim",
      flag: "--projection-dim",
      kind: "positiveInteger",
      description: "output size of the projector and predictor",
    },
    {
      key: "hiddenDim",
      flag: "--hidden-dim",
      kind: "positiveInteger",
      description: "hidden size of the projector",
    },
    {
      key: "predictorHiddenDim",
      flag: "--predictor-hidden-dim",
      kind: "positiveInteger",
      description: "hidden size of the predictor",
    },
    ...momentumOptions,
    {
      key: "solarize",
      flag: "--solarize",
      kind: "fraction",
      description: "probability of solarising the second view",
    },
    {
      key: "predictorLrScale",
      flag: "--predictor-lr-scale",
      kind: "positiveNumber",
      description: "the predictor's learning rate as a multiple of --lr",
    },
  ],
  recipes: {
    // solo-learn scripts/pretrain/cifar/byol.yaml (asymmetric augmentations).
    cifar: {
      augmentation: "solo-asymmetric",
      projectionDim: 256,
      hiddenDim: 4096,
      predictorHiddenDim: 4096,
      momentum: 0.99,
      finalMomentum: 1,
      solarize: 0.2,
      ...soloLarsRecipe,
      learningRate: 1,
      weightDecay: 1e-5,
    },
    // A narrow network on the synthetic set: heads sized to its 128 features.
    synthetic: { hiddenDim: 512, predictorHiddenDim: 512, projectionDim: 128 },
  },
  validate(options) {
    const checked = checkOptions(this, options);
    checkMomentumSchedule(checked);
    return checked;
  },
  views(options, base) {
    // Solarisation only on the second view (solo-learn's asymmetric.yaml).
    const solarize = { threshold: base.solarize?.threshold ?? 0.5, p: options.solarize };
    return [
      { count: 1, augment: { ...base, solarize: null } },
      { count: 1, augment: { ...base, solarize } },
    ];
  },
  build({ gpu, backbone, totalSteps, seed }, options) {
    const online = new ByolNetwork(backbone, options);
    const predictor = projectionHead(
      options.projectionDim,
      options.predictorHiddenDim,
      options.projectionDim,
      { batchNorm: true },
    );
    const target = new ByolNetwork(backbone, options);
    // The predictor last: the target's layout is a prefix of the online block's.
    const trainable = new ParameterBlock(gpu, [
      ...online.entries(),
      ...prefixed("predictor", predictor),
    ]);
    const targetBlock = new ParameterBlock(gpu, target.entries());
    initializeBlock(trainable, seed);
    initializeBlock(targetBlock, seed);
    const ema = new EmaUpdate(gpu, targetBlock, trainable);
    ema.copy();
    const training = { train: true, inputGrad: true };

    return {
      backbone: online.backbone,
      trainable,
      state: new Map<string, ParameterBlock | Tensor>([["target", targetBlock]]),
      record(program: Program, { views }: StepInputs) {
        const n = views[0].shape[0];
        const predictions = views.map((view) => {
          const features = online.backbone.forward(program, view, {
            ...training,
            inputGrad: false,
          });
          const projected = online.projector.forward(program, features.output, training);
          const predicted = predictor.forward(program, projected.output, training);
          return {
            features,
            projected,
            predicted,
            ...l2NormalizeForward(program, predicted.output),
          };
        });
        const targets = views.map((view) => {
          const features = target.backbone.forward(program, view, {
            ...training,
            inputGrad: false,
          });
          const projected = target.projector.forward(program, features.output, training);
          return l2NormalizeForward(program, projected.output).y;
        });
        // Each view's prediction regresses the other view's target projection.
        const losses = predictions.map((p, v) =>
          normalizedRegression(program, p.y, targets[1 - v], 1 / n)
        );
        predictions.forEach((p, v) => {
          const gradPrediction = l2NormalizeBackward(program, p.y, p.norms, losses[v].gradInput);
          const gradProjection = p.predicted.backward(program, gradPrediction)!;
          p.features.backward(program, p.projected.backward(program, gradProjection)!);
        });
        const loss = add(program, losses[1].loss, losses[0].loss);
        program.keep(loss, predictions[0].projected.output);
        return { loss, embeddings: predictions[0].projected.output };
      },
      lrScale: (parameter) => parameter.startsWith("predictor.") ? options.predictorLrScale : 1,
      recordAfterUpdate(program) {
        ema.record(program);
      },
      prepare(step) {
        ema.prepare(emaRate(step, totalSteps, options.momentum, options.finalMomentum));
      },
      destroy() {
        ema.destroy();
        trainable.destroy();
        targetBlock.destroy();
      },
    };
  },
};
