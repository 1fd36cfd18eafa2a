import { SelfsupError } from "../errors.ts";
import type { Precision } from "../gpu/kernel.ts";
import type { Gpu } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Layer } from "./module.ts";
import { HalfPrecision } from "./precision.ts";
import { ResNet18, type Stem } from "./resnet.ts";
import { checkTextEncoder, TextEncoder, type TextEncoderConfig } from "./text_encoder.ts";
import { VisionTransformer, type VitConfig } from "./vit.ts";

/** The encoder a method trains and evaluation uses, as saved in a checkpoint's metadata. */
export type BackboneConfig =
  | {
    readonly name: "resnet18";
    readonly stem: Stem;
    /** Channels of layer1; torchvision's ResNet-18 has 64. */
    readonly width: number;
    /**
     * The activations' type while training (f32 by default; f16 needs `shader-f16`). A
     * setting of the run, not of the network: a built backbone's config leaves it out.
     */
    readonly precision?: Precision;
  }
  | (VitConfig & {
    readonly name: "vit";
    /** As the ResNet's: the activations' type while training, left out of a built config. */
    readonly precision?: Precision;
  })
  | (TextEncoderConfig & { readonly name: "text" });

/**
 * An encoder: images [N, 3, H, W] → features [N, featureDim], or, for a text encoder, token
 * ids u32 [N, T] → features [N, featureDim].
 */
export interface Backbone extends Layer {
  readonly featureDim: number;
  readonly config: BackboneConfig;
  /**
   * The name of the classifier its library puts on top (torchvision's ResNet: `fc`), so that
   * a fine-tuned checkpoint loads into that library's model with its classifier.
   */
  readonly classifierName: string;
  /**
   * Present on a backbone that computes in f16: multiplies the gradient entering it by
   * `scale` (f32 [1], kept on the GPU: the loss scale), so that small gradients survive f16;
   * whoever calls it divides the scale out of the parameters' gradients.
   */
  useLossScale?(scale: Tensor): void;
}

/** Builds the backbone a config describes; a config from a file is checked first. */
export function createBackbone(config: BackboneConfig): Backbone {
  checkBackbone(config, "backbone");
  if (config.name === "text") return new TextEncoder(config);
  const network = config.name === "vit" ? new VisionTransformer(config) : new ResNet18(config);
  return config.precision === "f16" ? new HalfPrecision(network) : network;
}

/**
 * Refuses a backbone config no backbone can be built from, naming `source`; the ViT checks
 * the rest of its shape (divisibility) when it is built.
 */
export function checkBackbone(config: BackboneConfig, source: string): void {
  const whole = (n: unknown) => Number.isInteger(n) && (n as number) > 0;
  if (config?.name === "text") {
    if (typeof config.tokenizer !== "string" || !Number.isInteger(config.pad)) {
      throw new SelfsupError(`${source} describes an unknown backbone ${JSON.stringify(config)}`);
    }
    return checkTextEncoder(config);
  }
  const valid = config?.name === "resnet18"
    ? (config.stem === "cifar" || config.stem === "imagenet") && whole(config.width) &&
      [undefined, "f32", "f16"].includes(config.precision)
    : config?.name === "vit" &&
      [config.imageSize, config.patchSize, config.dim, config.depth, config.heads].every(whole) &&
      [undefined, "f32", "f16"].includes(config.precision);
  if (!valid) {
    throw new SelfsupError(`${source} describes an unknown backbone ${JSON.stringify(config)}`);
  }
}

/** A short human-readable name, e.g. "ResNet-18 (cifar stem, width 16)". */
export function describeBackbone(config: BackboneConfig): string {
  if (config.name === "text") {
    return `text transformer ${config.dim}/${config.depth}/${config.heads} (${config.tokenizer}, ` +
      `${config.contextLength} tokens${config.causal ? ", causal" : ""})`;
  }
  return config.name === "vit"
    ? `ViT ${config.dim}/${config.depth}/${config.heads} (patch ${config.patchSize})`
    : `ResNet-18 (${config.stem} stem, width ${config.width})`;
}

/** Refuses images of another size than a fixed-size backbone (the ViT) takes. */
export function checkImageSize(backbone: BackboneConfig, height: number, width: number): void {
  if (backbone.name === "vit" && (height !== backbone.imageSize || width !== backbone.imageSize)) {
    throw new SelfsupError(
      `The ViT takes ${backbone.imageSize}×${backbone.imageSize} images, the data has ` +
        `${height}×${width}: give the ViT the data's size (--image-size ${height})`,
    );
  }
}

/** Refuses a precision the backbone or the adapter cannot train in, naming the flag. */
export function checkPrecision(precision: Precision, backbone: BackboneConfig, gpu: Gpu): void {
  if (precision === "f32") return;
  if (backbone.name === "text") {
    throw new SelfsupError(
      `--precision f16 trains the ResNet and the ViT; the ${describeBackbone(backbone)} trains ` +
        `in f32`,
    );
  }
  if (!gpu.features.has("shader-f16")) {
    throw new SelfsupError(
      `--precision f16 needs an adapter with shader-f16, which ${gpu.adapterName} lacks`,
    );
  }
}
