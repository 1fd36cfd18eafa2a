import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { ntXent } from "../loss/nt_xent.ts";
import { type Entry, prefixed } from "../nn/module.ts";
import { projectionHead } from "../nn/projection_head.ts";
import { ResNet18, type ResNetConfig } from "../nn/resnet.ts";
import type { Sequential } from "../nn/sequential.ts";

/** The architecture of a SimCLR model. */
export interface SimclrConfig {
  readonly backbone: ResNetConfig;
  /** Output size of the projection head (SimCLR: 128). */
  readonly projectionDim: number;
}

/** A ResNet-18 encoder f(·) and a projection head g(·), named `backbone.*` and `projector.*`. */
export class SimclrModel {
  readonly backbone: ResNet18;
  readonly projector: Sequential;

  constructor(readonly config: SimclrConfig) {
    this.backbone = new ResNet18(config.backbone);
    const f = this.backbone.featureDim;
    this.projector = projectionHead(f, f, config.projectionDim);
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
