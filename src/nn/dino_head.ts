import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { GELU } from "./gelu.ts";
import { constant, truncatedNormal } from "./init.ts";
import { l2NormalizeBackward, l2NormalizeForward } from "./l2_normalize.ts";
import { Linear } from "./linear.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, prefixed } from "./module.ts";
import { Sequential } from "./sequential.ts";
import { WeightNormLinear } from "./weight_norm.ts";

/**
 * DINO's head (facebookresearch/dino, vision_transformer.py `DINOHead`, defaults nlayers 3,
 * no batch norm): an MLP Linear → GELU → Linear → GELU → Linear to a bottleneck, the
 * bottleneck L2-normalised, then a weight-normalised bias-free layer of K outputs, its
 * magnitude fixed at 1 (norm_last_layer) unless `lastLayer.trainableMagnitude`. The MLP's
 * weights start truncated-normal with std 0.02 and its biases at 0, as `_init_weights`; the
 * last layer as `nn.Linear`. Named as DINO's state dict (`mlp.0`, `mlp.2`, `mlp.4`,
 * `last_layer.weight_g`, `last_layer.weight_v`).
 */
export class DinoHead implements Layer {
  readonly mlp: Sequential;
  readonly lastLayer: WeightNormLinear;

  constructor(
    inputDim: number,
    hiddenDim: number,
    bottleneckDim: number,
    outputDim: number,
    lastLayer: { trainableMagnitude?: boolean } = {},
  ) {
    const init = { weight: truncatedNormal(0.02), bias: constant(0) };
    this.mlp = new Sequential([
      new Linear(inputDim, hiddenDim, init),
      new GELU(),
      new Linear(hiddenDim, hiddenDim, init),
      new GELU(),
      new Linear(hiddenDim, bottleneckDim, init),
    ]);
    this.lastLayer = new WeightNormLinear(bottleneckDim, outputDim, lastLayer);
  }

  entries(): Entry[] {
    return [...prefixed("mlp", this.mlp), ...prefixed("last_layer", this.lastLayer)];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const mlp = this.mlp.forward(program, input, options);
    const { y, norms } = l2NormalizeForward(program, mlp.output);
    const last = this.lastLayer.forward(program, y, { ...options, inputGrad: true });
    return {
      output: last.output,
      backward: (p, gradOutput) => {
        const gradBottleneck = l2NormalizeBackward(p, y, norms, last.backward(p, gradOutput)!);
        return mlp.backward(p, gradBottleneck);
      },
    };
  }
}
