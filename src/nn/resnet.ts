import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { add } from "./add.ts";
import { GlobalAvgPool } from "./avg_pool.ts";
import { BatchNorm2d } from "./batch_norm.ts";
import { Conv2d } from "./conv2d.ts";
import { MaxPool2d } from "./max_pool.ts";
import type { BackboneConfig } from "./backbone.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, prefixed } from "./module.ts";
import { Sequential } from "./sequential.ts";

/**
 * The first layers of the network. "imagenet" is torchvision's: a 7×7 stride-2 convolution
 * and a 3×3 stride-2 max pool, which shrink a 32×32 image to 8×8 before layer1. "cifar"
 * keeps the resolution: a 3×3 stride-1 convolution and no max pool.
 */
export type Stem = "imagenet" | "cifar";

/** The shape of a ResNet-18. */
export interface ResNetConfig {
  readonly name?: "resnet18";
  readonly stem: Stem;
  /** Channels of layer1; layers 2–4 double it each time. torchvision's is 64. */
  readonly width: number;
}

/**
 * torchvision's BasicBlock: two 3×3 convolutions with batch norm, and a shortcut. Its ReLUs
 * and the residual join run inside the batch norms' kernels (fewer passes over activations).
 */
export class BasicBlock implements Layer {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  /** A 1×1 convolution and batch norm when the block changes resolution or width. */
  readonly downsample?: Sequential;

  constructor(inChannels: number, outChannels: number, stride: number) {
    this.conv1 = new Conv2d(inChannels, outChannels, 3, { stride, padding: 1 });
    this.bn1 = new BatchNorm2d(outChannels);
    this.conv2 = new Conv2d(outChannels, outChannels, 3, { stride: 1, padding: 1 });
    this.bn2 = new BatchNorm2d(outChannels);
    if (stride !== 1 || inChannels !== outChannels) {
      this.downsample = new Sequential([
        new Conv2d(inChannels, outChannels, 1, { stride, padding: 0 }),
        new BatchNorm2d(outChannels),
      ]);
    }
  }

  entries(): Entry[] {
    return [
      ...prefixed("conv1", this.conv1),
      ...prefixed("bn1", this.bn1),
      ...prefixed("conv2", this.conv2),
      ...prefixed("bn2", this.bn2),
      ...(this.downsample ? prefixed("downsample", this.downsample) : []),
    ];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const inner = { ...options, inputGrad: true };
    const conv1 = this.conv1.forward(program, input, options);
    const bn1 = this.bn1.forward(program, conv1.output, inner, { relu: true });
    const conv2 = this.conv2.forward(program, bn1.output, inner);
    const shortcut = this.downsample?.forward(program, input, options);
    const bn2 = this.bn2.forwardResidual(
      program,
      conv2.output,
      shortcut?.output ?? input,
      inner,
    );
    return {
      output: bn2.output,
      backward: (p, gradOutput) => {
        // The residual join passes the gradient behind the ReLU unchanged to both branches.
        // The shortcut's backward is recorded before bn2's input gradient, so that the
        // two are never live together (a lower peak of memory).
        const gradBn2 = bn2.backward(p, gradOutput);
        const gradShortcut = shortcut ? shortcut.backward(p, gradBn2.residual) : gradBn2.residual;
        let grad = conv2.backward(p, gradBn2.input()!)!;
        grad = bn1.backward(p, grad)!;
        const gradMain = conv1.backward(p, grad);
        return gradMain && gradShortcut ? add(p, gradMain, gradShortcut) : undefined;
      },
    };
  }
}

/**
 * ResNet-18 without its classifier: images [N, 3, H, W] → features [N, 8·width]. Parameter
 * names are torchvision's, so a checkpoint's backbone loads into `torchvision.models.resnet18`.
 */
export class ResNet18 implements Layer {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly maxpool?: MaxPool2d;
  readonly layers: readonly Sequential[];
  readonly avgpool: GlobalAvgPool = new GlobalAvgPool();
  /** Length of the feature vector. */
  readonly featureDim: number;
  readonly config: BackboneConfig;
  readonly classifierName = "fc";

  constructor(config: ResNetConfig) {
    this.config = { name: "resnet18", stem: config.stem, width: config.width };
    const w = config.width;
    if (!Number.isInteger(w) || w < 1) throw new Error(`ResNet width must be a positive integer`);
    this.conv1 = config.stem === "imagenet"
      ? new Conv2d(3, w, 7, { stride: 2, padding: 3 })
      : new Conv2d(3, w, 3, { stride: 1, padding: 1 });
    this.bn1 = new BatchNorm2d(w);
    if (config.stem === "imagenet") {
      this.maxpool = new MaxPool2d({ kernel: 3, stride: 2, padding: 1 });
    }
    const widths = [w, 2 * w, 4 * w, 8 * w];
    this.layers = widths.map((c, i) => {
      const inChannels = i === 0 ? w : widths[i - 1];
      return new Sequential([
        new BasicBlock(inChannels, c, i === 0 ? 1 : 2),
        new BasicBlock(c, c, 1),
      ]);
    });
    this.featureDim = 8 * w;
  }

  entries(): Entry[] {
    return [
      ...prefixed("conv1", this.conv1),
      ...prefixed("bn1", this.bn1),
      ...this.layers.flatMap((layer, i) => prefixed(`layer${i + 1}`, layer)),
    ];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    // The stem's ReLU runs inside its batch norm's kernels.
    const bn1: Layer = {
      entries: () => [],
      forward: (p, x, o) => this.bn1.forward(p, x, o, { relu: true }),
    };
    const layers: Layer[] = [this.conv1, bn1];
    if (this.maxpool) layers.push(this.maxpool);
    layers.push(...this.layers, this.avgpool);
    return new Sequential(layers).forward(program, input, options);
  }
}
