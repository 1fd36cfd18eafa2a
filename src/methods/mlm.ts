import { tokenizerNamed } from "../data/tokenizer.ts";
import {
  packCorpus,
  predictionsPerSequence,
  type TextViews,
  TokenWriter,
} from "../data/text_batcher.ts";
import { isTextDataset, type TextDataset } from "../data/text.ts";
import { type Gpu, Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { SelfsupError } from "../errors.ts";
import { crossEntropy } from "../loss/cross_entropy.ts";
import { maskedCrossEntropy } from "../loss/masked_cross_entropy.ts";
import { add } from "../nn/add.ts";
import { vitLinearInit } from "../nn/attention.ts";
import { describeBackbone } from "../nn/backbone.ts";
import { GELU } from "../nn/gelu.ts";
import { constant, normal } from "../nn/init.ts";
import { LayerNorm } from "../nn/layer_norm.ts";
import { Linear, linearBackwardInput, linearBackwardWeight, linearForward } from "../nn/linear.ts";
import { type ForwardOptions, Parameter, prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { Sequential } from "../nn/sequential.ts";
import { TextEncoder } from "../nn/text_encoder.ts";
import { gatherTokens, scatterTokens } from "../nn/tokens.ts";
import { textEncoderConfig } from "./_text.ts";
import { checkOptions, initializeBlock, type Method, type TextInputs } from "./method.ts";

/** Masked language modelling's options. */
export interface MlmOptions {
  /** Fraction of each sequence's tokens chosen for prediction (BERT: 0.15). */
  readonly maskRatio: number;
  /** BERT's one mask per sequence (`static`) or RoBERTa's new one each epoch (`dynamic`). */
  readonly masking: "static" | "dynamic";
  /** BERT's next-sentence prediction beside the masked tokens. */
  readonly nsp: boolean;
  /** Standard deviation of the normal initial weights and embedding tables (BERT's 0.02). */
  readonly initStd: number;
}

/** Held-out sequences per forward pass of the evaluation. */
const evaluationBatch = 64;

/**
 * BERT's masked-language-modelling head on the chosen tokens' features: a dense layer,
 * GELU and LayerNorm (`head.dense`, `head.norm`), then the decoder, whose weight is the
 * token embedding (tied) with a bias of its own (`head.bias`).
 */
class MlmHead {
  readonly dense: Linear;
  readonly norm: LayerNorm;
  readonly bias: Parameter;
  readonly #transform: Sequential;

  constructor(dim: number, readonly decoder: Parameter) {
    this.dense = new Linear(dim, dim, vitLinearInit);
    this.norm = new LayerNorm(dim);
    this.bias = new Parameter([decoder.shape[0]], "bias", constant(0));
    this.#transform = new Sequential([this.dense, new GELU(), this.norm]);
  }

  entries() {
    return [
      ...prefixed("head.dense", this.dense),
      ...prefixed("head.norm", this.norm),
      ["head.bias", this.bias] as const,
    ];
  }

  /** Features [R, D] → logits over the vocabulary [R, V], and the features' gradient. */
  forward(program: Program, features: Tensor, options: ForwardOptions) {
    const transformed = this.#transform.forward(program, features, options);
    const weight = this.decoder;
    const logits = linearForward(program, transformed.output, weight.value, this.bias.value);
    return {
      logits,
      backward: (p: Program, gradLogits: Tensor) => {
        linearBackwardWeight(p, transformed.output, gradLogits, weight.grad, this.bias.grad);
        return transformed.backward(p, linearBackwardInput(p, gradLogits, weight.value))!;
      },
    };
  }
}

/**
 * Masked language modelling (Devlin et al. 2019, BERT; Liu et al. 2019, RoBERTa) on the
 * text encoder: BERT's masking of each sequence (15% of its tokens chosen; of those, 80% →
 * [MASK], 10% a random token, 10% kept), the encoder's features of the chosen tokens
 * through BERT's head and the decoder tied to the token embedding, cross-entropy on the
 * chosen tokens only. `--masking static` fixes each sequence's mask for the run (BERT's
 * data, masked once), `dynamic` draws a new one each epoch (RoBERTa); `--nsp` adds BERT's
 * next-sentence prediction — sequence pairs [CLS] A [SEP] B [SEP] with B the continuation
 * half the time, a linear classifier on the first token's features, its cross-entropy added
 * to the loss. The checkpoint's backbone is the encoder; the heads are `method.head.*`,
 * `method.nsp.*`.
 */
export const mlm: Method<MlmOptions> = {
  name: "mlm",
  title: "MLM",
  encoder: "the text encoder",
  modality: "text",
  defaults: { maskRatio: 0.15, masking: "dynamic", nsp: false, initStd: 0.02 },
  options: [
    {
      key: "maskRatio",
      flag: "--mask-ratio",
      kind: "fraction",
      description: "fraction of each sequence's tokens chosen for prediction",
    },
    {
      key: "masking",
      flag: "--masking",
      kind: "choice",
      choices: ["static", "dynamic"],
      description: "one mask per sequence for the run (BERT) or a new one each epoch (RoBERTa)",
    },
    {
      key: "nsp",
      flag: "--nsp",
      kind: "boolean",
      description: "next-sentence prediction on sequence pairs (BERT)",
    },
    {
      key: "initStd",
      flag: "--init-std",
      kind: "positiveNumber",
      description: "standard deviation of the normal initial weights and embedding tables " +
        "(BERT's initializer_range)",
    },
  ],
  recipes: {
    // RoBERTa's optimiser (AdamW, betas (0.9, 0.98), weight decay 0.01 on weights, warm-up
    // then decay) at a rate for a short run on the synthetic corpus, and initial weights at
    // 0.1, not BERT's 0.02 (tuned for a width of 768): on this 64-wide encoder 0.02 leaves
    // the loss on a plateau near 3 and the probe below a random encoder's, in selfsup and in
    // a PyTorch replica (tests/fixtures/replica_mlm_run.py; README, results).
    synthetic: {
      dataset: { name: "synthetic-text" },
      backbone: textEncoderConfig("bytes"),
      initStd: 0.1,
      optimizer: "adamw",
      betas: [0.9, 0.98],
      learningRate: 5e-3,
      weightDecay: 0.01,
      excludeBiasAndNorm: true,
      warmupEpochs: 1,
      schedule: "cosine",
    },
  },
  validate(options) {
    const checked = checkOptions(this, options);
    if (!(checked.maskRatio > 0 && checked.maskRatio < 1)) {
      throw new SelfsupError(
        `--mask-ratio must be between 0 and 1 (exclusive), got ${checked.maskRatio}`,
      );
    }
    return checked;
  },
  views() {
    return [];
  },
  text(options, encoder): TextViews {
    return {
      tokenizer: encoder.tokenizer,
      sequenceLength: encoder.contextLength,
      masking: { ratio: options.maskRatio, mode: options.masking },
      pairs: options.nsp,
    };
  },
  backbone(options, backbone) {
    // A pair's second segment needs an embedding of its own.
    return options.nsp && backbone.name === "text" ? { ...backbone, segments: 2 } : backbone;
  },
  build({ gpu, backbone: config, batchSize, seed }, options) {
    if (config.name !== "text") {
      throw new SelfsupError(
        `MLM needs a text encoder (--backbone text), not ${describeBackbone(config)}`,
      );
    }
    if (config.causal) {
      throw new SelfsupError(
        "masked language modelling reads both ways: --text-attention causal is for CLIP's text encoder",
      );
    }
    const encoder = new TextEncoder(config);
    const head = new MlmHead(config.dim, encoder.tokenEmbed.weight);
    const nsp = options.nsp ? new Linear(config.dim, 2, vitLinearInit) : null;
    const trainable = new ParameterBlock(gpu, [
      ...prefixed("backbone", encoder),
      ...head.entries(),
      ...(nsp ? prefixed("nsp", nsp) : []),
    ]);
    // Every weight and table normal at one scale, as BERT's _init_weights (biases 0, LayerNorms
    // ones and zeros, as the layers make them).
    initializeBlock(
      trainable,
      seed,
      (_, parameter) =>
        parameter.kind === "bias" || parameter.kind === "norm"
          ? parameter.init
          : normal(options.initStd),
    );
    const views = mlm.text!(options, config);
    const predictions = predictionsPerSequence(views);
    const t = config.contextLength;
    const first = gpu.tensor([batchSize, 1], "first token index", "u32");
    gpu.write(first, new Uint32Array(batchSize));

    /**
     * The encoder's features of every token, and the head's logits of the chosen ones (as
     * many per sequence as `positions` has: held-out text is packed without pairs).
     */
    const predict = (program: Program, text: TextInputs, mode: ForwardOptions) => {
      const { tokens, positions } = text;
      const [n, chosenPerSequence] = positions!.shape;
      const embedded = encoder.embed(program, tokens, text.segments);
      const encoded = encoder.encode(program, embedded.output, tokens, {
        ...mode,
        inputGrad: true,
      });
      const chosen = gatherTokens(program, encoded.output, positions!);
      const rows = chosen.reshape([n * chosenPerSequence, config.dim]);
      const decoded = head.forward(program, rows, { ...mode, inputGrad: true });
      return { embedded, encoded, decoded };
    };

    return {
      backbone: encoder,
      trainable,
      state: new Map(),
      record(program, { text }) {
        if (!text?.positions || !text.targets || (nsp && !text.isNext)) {
          throw new Error(`MLM takes masked token sequences${nsp ? " in pairs" : ""}`);
        }
        const train = { train: true, inputGrad: true };
        const { embedded, encoded, decoded } = predict(program, text, train);
        const n = text.tokens.shape[0];
        const masked = maskedCrossEntropy(
          program,
          decoded.logits,
          text.targets.reshape([n * predictions]),
        );
        const gradChosen = decoded.backward(program, masked.gradInput)
          .reshape([n, predictions, config.dim]);
        let gradEncoded = scatterTokens(program, gradChosen, text.positions!, t);
        let loss = masked.loss;
        if (nsp) {
          const cls = gatherTokens(program, encoded.output, first).reshape([n, config.dim]);
          const pass = nsp.forward(program, cls, train);
          const next = crossEntropy(program, pass.output, text.isNext!);
          loss = add(program, loss, next.loss);
          const gradCls = pass.backward(program, next.gradInput)!.reshape([n, 1, config.dim]);
          gradEncoded = add(program, gradEncoded, scatterTokens(program, gradCls, first, t));
        }
        embedded.backward(program, encoded.backward(program, gradEncoded)!);
        // The collapse monitor watches the features of every token: a sequence's mean
        // features differ little early on, while the tokens' do unless the encoder collapses.
        const tokens = encoded.output.reshape([n * t, config.dim]);
        program.keep(loss);
        return { loss, embeddings: tokens };
      },
      prepare() {},
      evaluate: ({ train, test, seed }) => {
        if (!isTextDataset(train) || !isTextDataset(test)) {
          throw new SelfsupError("MLM evaluates on text");
        }
        return maskedTokenAccuracy(gpu, predict, { views, train, test, seed });
      },
      destroy() {
        gpu.release(first.buffer);
        trainable.destroy();
      },
    };
  },
};

/**
 * The fraction of masked tokens of held-out text that the model predicts (argmax of its
 * logits), each held-out sequence masked once from the seed as a static mask; and the
 * unigram baseline's: always predicting the training text's most frequent token.
 */
async function maskedTokenAccuracy(
  gpu: Gpu,
  predict: (program: Program, text: TextInputs, mode: ForwardOptions) => {
    decoded: { logits: Tensor };
  },
  { views, train, test, seed }: {
    views: TextViews;
    train: TextDataset;
    test: TextDataset;
    seed: number;
  },
): Promise<Record<string, number>> {
  const tokenizer = tokenizerNamed(views.tokenizer);
  const single = {
    ...views,
    pairs: false,
    masking: { ...views.masking!, mode: "static" as const },
  };
  const counts = new Map<number, number>();
  for (const block of packCorpus(train, tokenizer, single).blocks) {
    for (const sentence of block) for (const t of sentence) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  const frequent = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const source = packCorpus(test, tokenizer, single);
  const writer = new TokenWriter(source, single, seed);
  const size = evaluationBatch, t = views.sequenceLength, p = writer.predictions;
  const batch = writer.allocate(size);
  const program = new Program(gpu, "masked-token accuracy");
  try {
    const tokens = program.tensor([size, t], "tokens", "u32");
    const positions = program.tensor([size, p], "chosen positions", "u32");
    const { decoded } = predict(program, { tokens, positions }, { train: false, inputGrad: false });
    program.keep(decoded.logits);
    const vocab = tokenizer.vocabSize;
    let correct = 0, unigram = 0, total = 0;
    for (let start = 0; start < source.blocks.length; start += size) {
      const count = Math.min(size, source.blocks.length - start);
      // A last partial batch repeats its first sequence; its rows are not counted.
      writer.write(Array.from({ length: size }, (_, k) => start + (k < count ? k : 0)), 0, batch);
      gpu.write(tokens, batch.tokens);
      gpu.write(positions, batch.positions);
      gpu.submit(program);
      const logits = await gpu.readF32(decoded.logits);
      for (let row = 0; row < count * p; row++) {
        const target = batch.targets[row];
        if (target < 0) continue;
        let best = 0;
        for (let v = 1; v < vocab; v++) {
          if (logits[row * vocab + v] > logits[row * vocab + best]) best = v;
        }
        total++;
        if (best === target) correct++;
        if (target === frequent) unigram++;
      }
    }
    return { masked_token_accuracy: correct / total, unigram_accuracy: unigram / total };
  } finally {
    program.destroy();
  }
}
