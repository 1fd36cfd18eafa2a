import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { SelfsupError } from "../errors.ts";
import { add } from "./add.ts";
import { Attention } from "./attention.ts";
import { normal, truncatedNormal } from "./init.ts";
import { LayerNorm } from "./layer_norm.ts";
import { Mlp } from "./mlp.ts";
import {
  type Entry,
  type Forward,
  type ForwardOptions,
  type Layer,
  Parameter,
  prefixed,
  RunningStat,
} from "./module.ts";
import { PatchEmbed } from "./patch_embed.ts";
import { Sequential } from "./sequential.ts";
import {
  addPositions,
  addPositionsBackward,
  gatherTokens,
  prependClassToken,
  prependClassTokenBackward,
  scatterTokens,
  sincosPositions,
} from "./tokens.ts";

/**
 * A pre-norm transformer block as timm's `Block`: x + attn(norm1(x)), then
 * x + mlp(norm2(x)), on tokens [N, T, dim] for any T.
 */
export class Block implements Layer {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;

  constructor(readonly dim: number, heads: number, mlpRatio = 4) {
    this.norm1 = new LayerNorm(dim);
    this.attn = new Attention(dim, heads);
    this.norm2 = new LayerNorm(dim);
    this.mlp = new Mlp(dim, mlpWidth(dim, mlpRatio));
  }

  entries(): Entry[] {
    return [
      ...prefixed("norm1", this.norm1),
      ...prefixed("attn", this.attn),
      ...prefixed("norm2", this.norm2),
      ...prefixed("mlp", this.mlp),
    ];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const inner = { ...options, inputGrad: true };
    const norm1 = this.norm1.forward(program, input, inner);
    const attn = this.attn.forward(program, norm1.output, inner);
    const mid = add(program, input, attn.output);
    const norm2 = this.norm2.forward(program, mid, inner);
    const mlp = this.mlp.forward(program, norm2.output, inner);
    const output = add(program, mid, mlp.output);
    return {
      output,
      backward: (p, gradOutput) => {
        // Each residual join passes its gradient unchanged to both branches.
        const gradMlp = norm2.backward(p, mlp.backward(p, gradOutput)!)!;
        const gradMid = add(p, gradOutput, gradMlp);
        const gradAttn = norm1.backward(p, attn.backward(p, gradMid)!)!;
        return options.inputGrad ? add(p, gradMid, gradAttn) : undefined;
      },
    };
  }
}

/** Position embeddings: learned (timm's default) or fixed 2-D sine-cosine (MAE's). */
export type VitPositions = "learned" | "sincos";

/** The shape of a {@link VisionTransformer}. */
export interface VitConfig {
  readonly name?: "vit";
  /** Side of the square input images. */
  readonly imageSize: number;
  /** Side of the square patches; must divide the image side. */
  readonly patchSize: number;
  /** Token width D. */
  readonly dim: number;
  /** Number of blocks. */
  readonly depth: number;
  /** Attention heads; must divide the width. */
  readonly heads: number;
  /** Hidden width of the MLPs relative to D (4 in ViT). */
  readonly mlpRatio?: number;
  readonly positions?: VitPositions;
}

/** ViT-Tiny (timm's vit_tiny_patch16_224 widths) on 32×32 images with 4×4 patches. */
export const vitTiny: VitConfig = { imageSize: 32, patchSize: 4, dim: 192, depth: 12, heads: 3 };

/**
 * A small ViT that trains in minutes on a CPU adapter: width 128, 4 blocks of 4 heads
 * (32 channels each), 4×4 patches of a 32×32 image (64 tokens and the class token).
 */
export const vitSmallDefault: VitConfig = {
  imageSize: 32,
  patchSize: 4,
  dim: 128,
  depth: 4,
  heads: 4,
};

function checkConfig(c: VitConfig): void {
  const positive = {
    imageSize: c.imageSize,
    patchSize: c.patchSize,
    dim: c.dim,
    depth: c.depth,
    heads: c.heads,
  };
  for (const [name, value] of Object.entries(positive)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new SelfsupError(`ViT ${name} must be a positive integer, got ${value}`);
    }
  }
  if (c.imageSize % c.patchSize !== 0) {
    throw new SelfsupError(
      `ViT patch size ${c.patchSize} does not divide image size ${c.imageSize}`,
    );
  }
  if (c.dim % c.heads !== 0) {
    throw new SelfsupError(`ViT width ${c.dim} is not divisible by ${c.heads} heads`);
  }
  if (c.positions === "sincos" && c.dim % 4 !== 0) {
    throw new SelfsupError(`ViT width ${c.dim} must be divisible by 4 for sine-cosine positions`);
  }
  if (!(mlpWidth(c.dim, c.mlpRatio ?? 4) >= 1)) {
    throw new SelfsupError(`ViT MLP ratio ${c.mlpRatio} leaves no hidden units at width ${c.dim}`);
  }
}

/** The hidden width of a block's MLP: ⌊dim·ratio⌋, as timm's int(dim * mlp_ratio). */
export function mlpWidth(dim: number, ratio: number): number {
  return Math.floor(dim * ratio);
}

/**
 * A Vision Transformer without its classifier, as timm's `VisionTransformer` with
 * `num_classes=0` and 'token' pooling: images [N, 3, H, W] → features [N, D], the class
 * token after the final LayerNorm. Parameter names and shapes are timm's, so its entries load
 * into a timm model of the same size with strict=True; initialisation is timm's too
 * (linear weights trunc-normal std 0.02 with zero biases, learned positions trunc-normal std
 * 0.02, class token normal std 1e-6, LayerNorms ones and zeros, the patch embedding
 * PyTorch's Conv2d default). Fixed sine-cosine positions are not learned: they are kept with
 * the running statistics, still named `pos_embed`.
 *
 * The token path is callable in pieces, for methods that work on tokens (MAE runs the blocks
 * on the visible patches only): {@link embedPatches} → (select tokens) →
 * {@link prependClassToken} → {@link encode}.
 */
export class VisionTransformer implements Layer {
  readonly patchEmbed: PatchEmbed;
  readonly clsToken: Parameter;
  readonly posEmbed: Parameter | RunningStat;
  readonly blocks: readonly Block[];
  readonly norm: LayerNorm;
  /** Length of the feature vector. */
  readonly featureDim: number;
  /** Patches per image, (imageSize / patchSize)². */
  readonly patches: number;
  readonly config: VitConfig & { readonly name: "vit" };
  /** timm's name for the classifier on top. */
  readonly classifierName = "head";
  readonly #encoder: Sequential;

  constructor(config: VitConfig) {
    checkConfig(config);
    // A run's precision is not the network's (see BackboneConfig): a built config leaves it out.
    const { precision: _, ...network } = config as VitConfig & { precision?: unknown };
    this.config = { ...network, name: "vit" };
    const { dim, patchSize, imageSize } = config;
    const grid = imageSize / patchSize;
    this.patches = grid * grid;
    this.patchEmbed = new PatchEmbed(3, dim, patchSize);
    this.clsToken = new Parameter([1, 1, dim], "embedding", normal(1e-6));
    const posShape = [1, 1 + this.patches, dim];
    this.posEmbed = config.positions === "sincos"
      ? new RunningStat(posShape, () => sincosPositions(dim, grid))
      : new Parameter(posShape, "embedding", truncatedNormal(0.02));
    this.blocks = Array.from(
      { length: config.depth },
      () => new Block(dim, config.heads, config.mlpRatio ?? 4),
    );
    this.norm = new LayerNorm(dim);
    this.#encoder = new Sequential([...this.blocks, this.norm]);
    this.featureDim = dim;
  }

  entries(): Entry[] {
    return [
      ["cls_token", this.clsToken],
      ["pos_embed", this.posEmbed],
      ...prefixed("patch_embed", this.patchEmbed),
      ...this.blocks.flatMap((block, i) => prefixed(`blocks.${i}`, block)),
      ...prefixed("norm", this.norm),
    ];
  }

  /** Patch tokens with their positions: images [N, 3, H, W] → [N, patches, D]. */
  embedPatches(program: Program, images: Tensor, options: ForwardOptions): Forward {
    const size = this.config.imageSize;
    if (images.shape.length !== 4 || images.shape[2] !== size || images.shape[3] !== size) {
      throw new Error(`ViT for ${size}×${size} images got input [${images.shape}]`);
    }
    const embed = this.patchEmbed.forward(program, images, options);
    const output = addPositions(program, embed.output, this.posEmbed.value, 1);
    const pos = this.posEmbed;
    return {
      output,
      backward: (p, gradOutput) => {
        if (pos instanceof Parameter) addPositionsBackward(p, gradOutput, pos.grad, 1);
        return embed.backward(p, gradOutput);
      },
    };
  }

  /** Prepends the class token with its position: tokens [N, K, D] → [N, 1 + K, D]. */
  prependClassToken(program: Program, tokens: Tensor, options: ForwardOptions): Forward {
    const output = prependClassToken(program, tokens, this.clsToken.value, this.posEmbed.value);
    const pos = this.posEmbed;
    return {
      output,
      backward: (p, gradOutput) => {
        const gradPos = pos instanceof Parameter ? pos.grad : undefined;
        const gradTokens = prependClassTokenBackward(p, gradOutput, this.clsToken.grad, gradPos);
        return options.inputGrad ? gradTokens : undefined;
      },
    };
  }

  /** The blocks and the final LayerNorm on tokens [N, T, D] for any T. */
  encode(program: Program, tokens: Tensor, options: ForwardOptions): Forward {
    return this.#encoder.forward(program, tokens, options);
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const inner = { ...options, inputGrad: true };
    const embed = this.embedPatches(program, input, options);
    const tokens = this.prependClassToken(program, embed.output, inner);
    const encoded = this.encode(program, tokens.output, inner);
    const n = input.shape[0];
    // The class token is token 0 of every sample.
    const first = program.tensor([n, 1], "class token index", "u32");
    program.gpu.write(first, new Uint32Array(n));
    const features = gatherTokens(program, encoded.output, first);
    return {
      output: features.reshape([n, this.config.dim]),
      backward: (p, gradOutput) => {
        const gradFeatures = gradOutput.reshape([n, 1, this.config.dim]);
        const gradEncoded = scatterTokens(p, gradFeatures, first, 1 + this.patches);
        const gradTokens = encoded.backward(p, gradEncoded)!;
        return embed.backward(p, tokens.backward(p, gradTokens)!);
      },
    };
  }
}
