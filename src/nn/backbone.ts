import { SelfsupError } from "../errors.ts";
import type { Layer } from "./module.ts";
import { ResNet18, type Stem } from "./resnet.ts";

/** The encoder a method trains and evaluation uses, as saved in a checkpoint's metadata. */
export type BackboneConfig = {
  readonly name: "resnet18";
  readonly stem: Stem;
  /** Channels of layer1; torchvision's ResNet-18 has 64. */
  readonly width: number;
};

/** An encoder: images [N, 3, H, W] → features [N, featureDim]. */
export interface Backbone extends Layer {
  readonly featureDim: number;
  readonly config: BackboneConfig;
}

/** Builds the backbone a config describes; a config from a file is checked first. */
export function createBackbone(config: BackboneConfig): Backbone {
  checkBackbone(config, "backbone");
  return new ResNet18(config);
}

/** Refuses a backbone config no backbone can be built from, naming `source`. */
export function checkBackbone(config: BackboneConfig, source: string): void {
  const valid = config?.name === "resnet18" &&
    (config.stem === "cifar" || config.stem === "imagenet") &&
    Number.isInteger(config.width) && config.width > 0;
  if (!valid) {
    throw new SelfsupError(`${source} describes an unknown backbone ${JSON.stringify(config)}`);
  }
}

/** A short human-readable name, e.g. "ResNet-18 (cifar stem, width 16)". */
export function describeBackbone(config: BackboneConfig): string {
  return `ResNet-18 (${config.stem} stem, width ${config.width})`;
}
