/**
 * Token sequences for text encoders: documents tokenised and packed into blocks that fit a
 * sequence, BERT's masking of a training batch (15% of the tokens chosen, of those 80%
 * replaced by [MASK], 10% by a random token, 10% kept), next-sentence pairs, and the loader
 * that feeds training with them.
 *
 * Every random draw for sequence i comes from its own stream (seed, epoch, 1 + i) — the
 * stream a single view of image i draws from — or, with static masking, from epoch 0's, so a
 * batch depends only on the seed, the epoch and its indices, and a resumed run sees the very
 * batches it would have had.
 *
 * @module
 */
import { SelfsupError } from "../errors.ts";
import { epochPermutation, type TrainingBatch, type TrainingLoader } from "./batcher.ts";
import { Random } from "./random.ts";
import type { TextDataset } from "./text.ts";
import { type Tokenizer, tokenizerNamed } from "./tokenizer.ts";

/** BERT's corruption of training sequences. */
export interface MaskingConfig {
  /** Fraction of each sequence's tokens chosen for prediction (BERT: 0.15). */
  readonly ratio: number;
  /** `static`: one mask per sequence for the whole run (BERT); `dynamic`: a new one each epoch (RoBERTa). */
  readonly mode: "static" | "dynamic";
}

/** The token sequences a training step takes: the text analogue of a view group. */
export interface TextViews {
  readonly tokenizer: string;
  /** Tokens per sequence (T), special tokens included. */
  readonly sequenceLength: number;
  /** Masked language modelling's corruption and targets; null for clean sequences. */
  readonly masking: MaskingConfig | null;
  /** Next-sentence pairs: [CLS] A [SEP] B [SEP], B following A half the time. */
  readonly pairs: boolean;
}

/**
 * A batch of B token sequences; its arrays stay valid until the next batch is requested.
 * Sequences are [CLS] text [SEP] (or a pair), then [PAD] to the length T.
 */
export interface TokenBatch {
  /** [B, T]: the input, masked where masking chose. */
  readonly tokens: Uint32Array;
  /** [B, P]: the positions chosen for prediction; unused slots hold other, distinct positions. */
  readonly positions?: Uint32Array;
  /** [B, P]: the original token at each chosen position, −1 in unused slots. */
  readonly targets?: Int32Array;
  /** [B, T]: 0 for [CLS] A [SEP], 1 for B [SEP] (pairs only). */
  readonly segments?: Uint32Array;
  /** [B]: 1 when B follows A in the text, 0 when B is from elsewhere (pairs only). */
  readonly isNext?: Int32Array;
}

/** Predictions per sequence (P): the chosen fraction of the longest text a sequence holds. */
export function predictionsPerSequence(views: TextViews): number {
  const room = views.sequenceLength - (views.pairs ? 3 : 2);
  return views.masking ? Math.max(1, Math.ceil(views.masking.ratio * room)) : 0;
}

/** Refuses a sequence shape no batch can have. */
export function checkTextViews(views: TextViews): void {
  const least = views.pairs ? 5 : 3;
  if (!Number.isInteger(views.sequenceLength) || views.sequenceLength < least) {
    throw new SelfsupError(
      `--context-length must be a whole number ≥ ${least}, got ${views.sequenceLength}`,
    );
  }
  const ratio = views.masking?.ratio;
  if (ratio !== undefined && !(ratio > 0 && ratio < 1)) {
    throw new SelfsupError(`--mask-ratio must be between 0 and 1 (exclusive), got ${ratio}`);
  }
}

/**
 * Documents as token blocks: each block a list of sentences' tokens, with a label. A
 * pre-training corpus is packed (RoBERTa's full sentences: consecutive sentences fill a
 * block, across documents; a sentence longer than a block is cut); an evaluation set keeps
 * one block per document, cut to the sequence at batch time.
 */
export interface TokenBlocks {
  readonly blocks: readonly (readonly Int32Array[])[];
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
}

/**
 * The tokens of a sentence as it sits in text: followed by a space, which the byte tokenizer
 * keeps and WordPiece drops.
 */
function sentenceTokens(tokenizer: Tokenizer, sentence: string): Int32Array {
  return tokenizer.encode(`${sentence} `);
}

/** One block per document, for features of each document. */
export function documentBlocks(dataset: TextDataset, tokenizer: Tokenizer): TokenBlocks {
  const blocks: Int32Array[][] = [];
  const labels = new Int32Array(dataset.length);
  for (let i = 0; i < dataset.length; i++) {
    blocks.push(dataset.sentences(i).map((s) => sentenceTokens(tokenizer, s)));
    labels[i] = dataset.label(i);
  }
  return { blocks, labels, classNames: dataset.classNames };
}

/**
 * Packs a corpus into blocks of at most the text a sequence holds (T − 2 tokens, T − 3 for
 * pairs); a block's label is its first sentence's document's.
 */
export function packCorpus(
  dataset: TextDataset,
  tokenizer: Tokenizer,
  views: TextViews,
): TokenBlocks {
  const room = views.sequenceLength - (views.pairs ? 3 : 2);
  const blocks: Int32Array[][] = [];
  const labels: number[] = [];
  let block: Int32Array[] = [];
  let used = 0;
  const close = () => {
    if (block.length) blocks.push(block);
    block = [];
    used = 0;
  };
  for (let i = 0; i < dataset.length; i++) {
    for (const sentence of dataset.sentences(i)) {
      const tokens = sentenceTokens(tokenizer, sentence);
      for (let start = 0; start < tokens.length; start += room) {
        const piece = tokens.subarray(start, start + room);
        if (used + piece.length > room) close();
        if (block.length === 0) labels.push(dataset.label(i));
        block.push(piece);
        used += piece.length;
      }
    }
  }
  close();
  return { blocks, labels: Int32Array.from(labels), classNames: dataset.classNames };
}

/** Writes batches of sequences from token blocks: packing, pairs and masking. */
export class TokenWriter {
  readonly tokenizer: Tokenizer;
  /** Predictions per sequence (P), 0 without masking. */
  readonly predictions: number;
  readonly #random = new Random(0);
  readonly #a: number[] = [];
  readonly #b: number[] = [];

  constructor(readonly source: TokenBlocks, readonly views: TextViews, readonly seed: number) {
    checkTextViews(views);
    this.tokenizer = tokenizerNamed(views.tokenizer);
    this.predictions = predictionsPerSequence(views);
    if (views.pairs && source.blocks.length < 2) {
      throw new SelfsupError("Next-sentence pairs need at least two blocks of text");
    }
  }

  /** Empty arrays for a batch of `size` sequences. */
  allocate(size: number): Required<TokenBatch> {
    const t = this.views.sequenceLength, p = this.predictions;
    return {
      tokens: new Uint32Array(size * t),
      positions: new Uint32Array(size * p),
      targets: new Int32Array(size * p),
      segments: new Uint32Array(size * t),
      isNext: new Int32Array(size),
    };
  }

  /** Writes the sequences of blocks `indices` of epoch `epoch` into `out` (from {@link allocate}). */
  write(indices: ArrayLike<number>, epoch: number, out: Required<TokenBatch>): void {
    const { views } = this;
    const stream = views.masking?.mode === "static" ? 0 : epoch;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      const random = this.#random.reseed(this.seed, stream, 1 + i);
      const t = views.sequenceLength;
      const tokens = out.tokens.subarray(k * t, (k + 1) * t);
      if (views.pairs) {
        out.isNext[k] = this.#pair(i, random, tokens, out.segments.subarray(k * t, (k + 1) * t));
      } else {
        this.#single(i, tokens);
      }
      if (views.masking) {
        const p = this.predictions;
        this.#mask(
          random,
          tokens,
          out.positions.subarray(k * p, (k + 1) * p),
          out.targets.subarray(k * p, (k + 1) * p),
        );
      }
    }
  }

  /** [CLS] block [SEP] [PAD]…, the block cut to fit. */
  #single(i: number, out: Uint32Array): void {
    const { cls, sep, pad } = this.tokenizer;
    let n = 0;
    out[n++] = cls;
    for (const sentence of this.source.blocks[i]) {
      for (let j = 0; j < sentence.length && n < out.length - 1; j++) out[n++] = sentence[j];
    }
    out[n++] = sep;
    out.fill(pad, n);
  }

  /**
   * [CLS] A [SEP] B [SEP] [PAD]… as BERT's create_pretraining_data: A the first of the
   * block's sentences up to a random cut, B the rest of them half the time (and always when
   * the block has one sentence, the rest taken from another block), else a random other
   * block from a random sentence on (BERT's `random_start`: were B always a block's start, a
   * model could tell the pairs apart by how blocks begin); the longer of A and B loses tokens
   * at its end until both fit.
   * Returns whether B follows A.
   */
  #pair(i: number, random: Random, out: Uint32Array, segments: Uint32Array): number {
    const { cls, sep, pad } = this.tokenizer;
    const block = this.source.blocks[i];
    const cut = block.length >= 2 ? 1 + random.int(block.length - 1) : 1;
    const next = block.length >= 2 && random.float() < 0.5;
    const a = this.#a, b = this.#b;
    a.length = 0;
    b.length = 0;
    for (const s of block.slice(0, cut)) a.push(...s);
    let rest = block.slice(cut);
    if (!next) {
      const n = this.source.blocks.length;
      const other = this.source.blocks[(i + 1 + random.int(n - 1)) % n];
      rest = other.slice(random.int(other.length));
    }
    for (const s of rest) b.push(...s);
    while (a.length + b.length > out.length - 3) (a.length >= b.length ? a : b).pop();
    let n = 0;
    out[n++] = cls;
    for (const token of a) out[n++] = token;
    out[n++] = sep;
    const second = n;
    for (const token of b) out[n++] = token;
    out[n++] = sep;
    out.fill(pad, n);
    segments.fill(0, 0, second).fill(1, second, n).fill(0, n);
    return next ? 1 : 0;
  }

  /**
   * BERT's create_masked_lm_predictions on one sequence: of the tokens that are not special,
   * round(ratio · count) (at least one, at most P) chosen at random, in order of position;
   * each replaced by [MASK] with probability 0.8, else kept or replaced by a random ordinary
   * token with equal odds. Unused slots point at positions not chosen, so that the slots of a
   * sequence are distinct, with target −1.
   */
  #mask(random: Random, tokens: Uint32Array, positions: Uint32Array, targets: Int32Array): void {
    const { cls, sep, pad, mask, ordinary } = this.tokenizer;
    const candidates: number[] = [];
    for (let j = 0; j < tokens.length; j++) {
      const t = tokens[j];
      if (t !== cls && t !== sep && t !== pad) candidates.push(j);
    }
    const count = Math.min(
      positions.length,
      Math.max(1, Math.round(candidates.length * this.views.masking!.ratio)),
      candidates.length,
    );
    random.shuffle(candidates);
    const chosen = candidates.slice(0, count).sort((x, y) => x - y);
    const taken = new Set(chosen);
    chosen.forEach((j, s) => {
      positions[s] = j;
      targets[s] = tokens[j];
      if (random.float() < 0.8) tokens[j] = mask;
      else if (random.float() >= 0.5) {
        tokens[j] = ordinary[0] + random.int(ordinary[1] - ordinary[0]);
      }
    });
    let free = tokens.length - 1;
    for (let s = count; s < positions.length; s++) {
      while (taken.has(free)) free--;
      positions[s] = free--;
      targets[s] = -1;
    }
  }
}

/** Options of {@linkcode TokenLoader}. */
export interface TokenLoaderOptions {
  /** Sequences per batch; the last partial batch of an epoch is dropped. */
  readonly batchSize: number;
  readonly seed: number;
  readonly views: TextViews;
}

/**
 * Feeds training with batches of token sequences: per epoch the shuffle of the image loader
 * (the same seeded permutation), drop-last batches, each sequence packed, paired and masked
 * in this thread (a batch of text costs little next to a step).
 */
export class TokenLoader implements TrainingLoader {
  readonly batchesPerEpoch: number;
  readonly #writer: TokenWriter;
  readonly #batch: Required<TokenBatch>;

  constructor(readonly source: TokenBlocks, readonly options: TokenLoaderOptions) {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new SelfsupError(
        `Cannot batch with batch size ${batchSize}: expected a whole number ≥ 1`,
      );
    }
    if (source.blocks.length < batchSize) {
      throw new SelfsupError(
        `Cannot make a batch of ${batchSize} from ${source.blocks.length} blocks of text`,
      );
    }
    this.#writer = new TokenWriter(source, options.views, options.seed);
    this.#batch = this.#writer.allocate(batchSize);
    this.batchesPerEpoch = Math.floor(source.blocks.length / batchSize);
  }

  async *epoch(epoch: number, first = 0): AsyncGenerator<TrainingBatch> {
    if (!Number.isInteger(first) || first < 0 || first > this.batchesPerEpoch) {
      throw new Error(`Epoch ${epoch} has no batch ${first}`);
    }
    const b = this.options.batchSize;
    const order = epochPermutation(this.source.blocks.length, this.options.seed, epoch);
    for (let step = first; step < this.batchesPerEpoch; step++) {
      const indices = order.slice(step * b, (step + 1) * b);
      this.#writer.write(indices, epoch, this.#batch);
      const labels = Int32Array.from(indices, (i) => this.source.labels[i]);
      yield { groups: [], labels, indices, size: b, epoch, step, text: this.#batch };
    }
  }

  close(): void {}
}

/**
 * The sequences of blocks in order, without masking, keeping the last partial batch: for
 * features and evaluation.
 */
export function* evalTokenBatches(
  source: TokenBlocks,
  views: TextViews,
  batchSize: number,
): Generator<{ text: Required<TokenBatch>; labels: Int32Array; size: number; start: number }> {
  const writer = new TokenWriter(source, { ...views, pairs: false }, 0);
  const batch = writer.allocate(batchSize);
  for (let start = 0; start < source.blocks.length; start += batchSize) {
    const size = Math.min(batchSize, source.blocks.length - start);
    const indices = Array.from({ length: size }, (_, k) => start + k);
    writer.write(indices, 0, batch);
    yield { text: batch, labels: source.labels.subarray(start, start + size), size, start };
  }
}
