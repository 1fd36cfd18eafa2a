// What the methods on text share: text encoders' shapes, from a tokenizer.
import { tokenizerNamed } from "../data/tokenizer.ts";
import type { TextEncoderConfig } from "../nn/text_encoder.ts";

/** A text encoder's shape apart from its vocabulary. */
export type TextEncoderShape = Omit<TextEncoderConfig, "name" | "tokenizer" | "vocabSize" | "pad">;

/**
 * A small text encoder that trains in minutes on a CPU adapter: width 64, 2 blocks of 2
 * heads, 128 tokens, bidirectional, mean-pooled.
 */
export const textSmallDefault: TextEncoderShape = {
  contextLength: 128,
  dim: 64,
  depth: 2,
  heads: 2,
  causal: false,
  pooling: "mean",
};

/** The text encoder of a shape over a tokenizer's vocabulary. */
export function textEncoderConfig(
  tokenizer: string,
  shape: TextEncoderShape = textSmallDefault,
): TextEncoderConfig & { name: "text" } {
  const { vocabSize, pad } = tokenizerNamed(tokenizer);
  return { name: "text", tokenizer, vocabSize, pad, ...shape };
}
