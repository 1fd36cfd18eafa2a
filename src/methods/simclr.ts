import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { ntXent } from "../loss/nt_xent.ts";
import { type Backbone, type BackboneConfig, createBackbone } from "../nn/backbone.ts";
import { type Entry, prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { projectionHead } from "../nn/projection_head.ts";
import type { Sequential } from "../nn/sequential.ts";
import {
  checkOptions,
  initializeBlock,
  type Method,
  projectionHeadOptions,
  soloLarsRecipe,
} from "./method.ts";

/** The architecture of a SimCLR model. */
export interface SimclrConfig {
  readonly backbone: BackboneConfig;
  /** Output size of the projection head (SimCLR: 128). */
  readonly projectionDim: number;
  /** Hidden size of the projection head; the backbone's feature size when left out. */
  readonly hiddenDim?: number;
}

/** An encoder f(·) and a projection head g(·), named `backbone.*` and `projector.*`. */
export class SimclrModel {
  readonly backbone: Backbone;
  readonly projector: Sequential;

  constructor(readonly config: SimclrConfig) {
    this.backbone = createBackbone(config.backbone);
    const f = this.backbone.featureDim;
    this.projector = projectionHead(f, config.hiddenDim ?? f, config.projectionDim);
  }

  entries(): Entry[] {
    return [...prefixed("backbone", this.backbone), ...prefixed("projector", this.projector)];
  }
}

/** What one recorded SimCLR step produces. */
export interface SimclrStep {
  /** The NT-Xent loss, [1]. */
  readonly loss: Tensor;
  /** Backbone features h of both views, [2N, featureDim]. */
  readonly features: Tensor;
  /** Projections z of both views, [2N, projectionDim]. */
  readonly projections: Tensor;
}

/**
 * Records the forward and backward pass of one SimCLR step on `views` [2N, 3, H, W]: rows
 * 0..N−1 are the first view of N images and rows N..2N−1 the second view of the same images,
 * all through batch norm together. Parameter gradients accumulate into the model's gradient
 * block, which the caller zeroes first.
 */
export function recordSimclrStep(
  program: Program,
  model: SimclrModel,
  views: Tensor,
  temperature: number,
): SimclrStep {
  const train = { train: true, inputGrad: false };
  const backbone = model.backbone.forward(program, views, train);
  const projector = model.projector.forward(program, backbone.output, {
    train: true,
    inputGrad: true,
  });
  const { loss, gradInput } = ntXent(program, projector.output, temperature);
  const gradFeatures = projector.backward(program, gradInput)!;
  backbone.backward(program, gradFeatures);
  program.keep(loss, backbone.output, projector.output);
  return { loss, features: backbone.output, projections: projector.output };
}

/** SimCLR's options. */
export interface SimclrOptions {
  readonly temperature: number;
  readonly projectionDim: number;
  readonly hiddenDim?: number;
}

/**
 * SimCLR (Chen et al. 2020): two views of each image through one encoder and projection
 * head, the NT-Xent loss over the 2N projections; both views share batch norm, as the seed
 * runs them.
 */
export const simclr: Method<SimclrOptions> = {
  name: "simclr",
  title: "SimCLR",
  encoder: "the encoder f(·) (the only one)",
  defaults: { temperature: 0.2, projectionDim: 128 },
  options: [
    {
      key: "temperature",
      flag: "--temperature",
      kind: "positiveNumber",
      description: "NT-Xent temperature",
    },
    ...projectionHeadOptions,
  ],
  recipes: {
    // solo-learn scripts/pretrain/cifar/simclr.yaml (symmetric augmentations).
    cifar: {
      augmentation: "solo-symmetric",
      temperature: 0.2,
      projectionDim: 256,
      hiddenDim: 2048,
      ...soloLarsRecipe,
      learningRate: 0.4,
      weightDecay: 1e-4,
    },
  },
  validate(options) {
    return checkOptions(this, options);
  },
  views(_options, base) {
    return [{ count: 2, augment: base }];
  },
  build({ gpu, backbone, seed }, options) {
    const model = new SimclrModel({ backbone, ...options });
    const trainable = new ParameterBlock(gpu, model.entries());
    initializeBlock(trainable, seed);
    return {
      backbone: model.backbone,
      trainable,
      state: new Map(),
      record(program, { views: [views] }) {
        const step = recordSimclrStep(program, model, views, options.temperature);
        return { loss: step.loss, embeddings: step.projections };
      },
      prepare() {},
      destroy() {
        trainable.destroy();
      },
    };
  },
};
