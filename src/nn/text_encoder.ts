import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { SelfsupError } from "../errors.ts";
import { add } from "./add.ts";
import { Embedding } from "./embedding.ts";
import { truncatedNormal } from "./init.ts";
import { LayerNorm } from "./layer_norm.ts";
import {
  type AttentionMask,
  type Entry,
  type Forward,
  type ForwardOptions,
  type Layer,
  Parameter,
  prefixed,
} from "./module.ts";
import { type Pooling, poolings, sequencePool } from "./sequence_pool.ts";
import { Sequential } from "./sequential.ts";
import { addPositions, addPositionsBackward } from "./tokens.ts";
import { Block, mlpWidth } from "./vit.ts";

/** The shape of a {@link TextEncoder}. */
export interface TextEncoderConfig {
  readonly name?: "text";
  /** The tokenizer whose ids it reads (data/tokenizer.ts), for the record. */
  readonly tokenizer: string;
  /** Rows of the token embedding: the tokenizer's vocabulary. */
  readonly vocabSize: number;
  /** The tokenizer's padding id, which attention and pooling leave out. */
  readonly pad: number;
  /** Tokens per sequence (T), special tokens included: the learned positions. */
  readonly contextLength: number;
  /** Token width D, blocks, attention heads (dividing D), MLP width relative to D (4). */
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly mlpRatio?: number;
  /** Attention only to earlier tokens (CLIP's text encoder), or to all (BERT's). */
  readonly causal: boolean;
  /** The features evaluation takes of a sequence. */
  readonly pooling: Pooling;
  /** Segment embeddings, for next-sentence pairs (2); absent or 0: none. */
  readonly segments?: number;
}

/** Refuses a text encoder's shape, naming the flag. */
export function checkTextEncoder(c: TextEncoderConfig): void {
  const whole = {
    "--context-length": c.contextLength,
    "--text-dim": c.dim,
    "--text-depth": c.depth,
    "--text-heads": c.heads,
    vocabulary: c.vocabSize,
  };
  for (const [flag, value] of Object.entries(whole)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new SelfsupError(`${flag} must be a whole number ≥ 1, got ${value}`);
    }
  }
  if (c.dim % c.heads !== 0) {
    throw new SelfsupError(`--text-dim ${c.dim} is not divisible by --text-heads ${c.heads}`);
  }
  if (!poolings.includes(c.pooling)) {
    throw new SelfsupError(`--pooling must be one of ${poolings.join(", ")}, got ${c.pooling}`);
  }
  if (!(mlpWidth(c.dim, c.mlpRatio ?? 4) >= 1)) {
    throw new SelfsupError(`MLP ratio ${c.mlpRatio} leaves no hidden units at width ${c.dim}`);
  }
}

/**
 * A transformer text encoder: token embeddings (normal, std 0.02) and learned positions
 * (trunc-normal, std 0.02), optional segment embeddings, the pre-norm blocks of the ViT
 * (timm's Block) with attention masked to the tokens that are not padding (and, when causal,
 * to earlier ones), and a final LayerNorm: token ids u32 [N, T] → features [N, D], pooled
 * as the config says. Parameters: `token_embed.weight` [V, D], `pos_embed` [1, T, D],
 * `segment_embed.weight` [S, D], `blocks.{i}.…` as timm's, `norm.*`.
 *
 * The path is callable in pieces, for methods that need the tokens' features (masked
 * language modelling reads the chosen ones): {@link embed} → {@link encode}.
 */
export class TextEncoder implements Layer {
  readonly tokenEmbed: Embedding;
  readonly posEmbed: Parameter;
  readonly segmentEmbed: Embedding | null;
  readonly blocks: readonly Block[];
  readonly norm: LayerNorm;
  readonly featureDim: number;
  readonly config: TextEncoderConfig & { readonly name: "text" };
  readonly classifierName = "head";
  readonly #encoder: Sequential;

  constructor(config: TextEncoderConfig) {
    checkTextEncoder(config);
    this.config = { ...config, name: "text" };
    const { dim, contextLength } = config;
    this.tokenEmbed = new Embedding(config.vocabSize, dim);
    this.posEmbed = new Parameter([1, contextLength, dim], "embedding", truncatedNormal(0.02));
    this.segmentEmbed = config.segments ? new Embedding(config.segments, dim, "embedding") : null;
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
      ...prefixed("token_embed", this.tokenEmbed),
      ["pos_embed", this.posEmbed],
      ...(this.segmentEmbed ? prefixed("segment_embed", this.segmentEmbed) : []),
      ...this.blocks.flatMap((block, i) => prefixed(`blocks.${i}`, block)),
      ...prefixed("norm", this.norm),
    ];
  }

  /** Which keys attention may see in `tokens`. */
  mask(tokens: Tensor): AttentionMask {
    return { tokens, pad: this.config.pad, causal: this.config.causal };
  }

  /**
   * Token, position and (when the encoder has them) segment embeddings of tokens [N, T]:
   * [N, T, D]. `segments` (u32 [N, T]) defaults to segment 0 everywhere. The backward pass
   * adds the tables' gradients; ids have none.
   */
  embed(program: Program, tokens: Tensor, segments?: Tensor): Forward {
    const [n, t] = tokens.shape;
    if (tokens.shape.length !== 2 || t !== this.config.contextLength) {
      throw new Error(`Text encoder of ${this.config.contextLength} tokens got [${tokens.shape}]`);
    }
    const words = this.tokenEmbed.forward(program, tokens);
    let summed = words.output;
    let segment: Forward | undefined;
    if (this.segmentEmbed) {
      let ids = segments;
      if (!ids) {
        ids = program.tensor([n, t], "segment 0", "u32");
        program.gpu.write(ids, new Uint32Array(n * t));
      }
      segment = this.segmentEmbed.forward(program, ids);
      summed = add(program, summed, segment.output);
    }
    const output = addPositions(program, summed, this.posEmbed.value, 0);
    return {
      output,
      backward: (p, gradOutput) => {
        addPositionsBackward(p, gradOutput, this.posEmbed.grad, 0);
        segment?.backward(p, gradOutput);
        return words.backward(p, gradOutput);
      },
    };
  }

  /** The blocks and the final LayerNorm on embedded tokens [N, T, D], attention masked. */
  encode(program: Program, x: Tensor, tokens: Tensor, options: ForwardOptions): Forward {
    return this.#encoder.forward(program, x, { ...options, attentionMask: this.mask(tokens) });
  }

  forward(program: Program, tokens: Tensor, options: ForwardOptions): Forward {
    const embedded = this.embed(program, tokens);
    const encoded = this.encode(program, embedded.output, tokens, { ...options, inputGrad: true });
    const pooled = sequencePool(
      program,
      encoded.output,
      tokens,
      this.config.pad,
      this.config.pooling,
    );
    return {
      output: pooled.output,
      backward: (p, gradOutput) => {
        embedded.backward(p, encoded.backward(p, pooled.backward(p, gradOutput))!);
        return undefined;
      },
    };
  }
}
