import { type CaptionedDataset, hasCaptions } from "../data/captions.ts";
import { ListTextDataset, type TextDataset } from "../data/text.ts";
import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { SelfsupError } from "../errors.ts";
import { clipInitialLogitScale, clipLoss } from "../loss/clip.ts";
import { type Backbone, type BackboneConfig, createBackbone } from "../nn/backbone.ts";
import { constant } from "../nn/init.ts";
import { l2NormalizeBackward, l2NormalizeForward, unitRows } from "../nn/l2_normalize.ts";
import { Linear } from "../nn/linear.ts";
import { type Forward, type ForwardOptions, Parameter, prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { TextEncoder } from "../nn/text_encoder.ts";
import { textEncoderConfig } from "./_text.ts";
import { checkOptions, initializeBlock, type Method, type MethodEvaluationData } from "./method.ts";

/** CLIP's options. */
export interface ClipOptions {
  /** Width of the embedding images and texts share. */
  readonly projectionDim: number;
}

/** The zero-shot prompt of a class (CLIP's "a photo of a {class}."). */
export function clipPrompt(className: string): string {
  return `a photo of a ${className}`;
}

/**
 * An encoder with its projection into the shared embedding, as one backbone: what
 * evaluation extracts features of.
 */
function projected(encoder: Backbone | TextEncoder, projection: Linear): Backbone {
  return {
    config: encoder.config as BackboneConfig,
    featureDim: projection.outFeatures,
    classifierName: "head",
    entries: () => [],
    forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
      const features = encoder.forward(program, input, options);
      const embedded = projection.forward(program, features.output, {
        ...options,
        inputGrad: true,
      });
      return {
        output: embedded.output,
        backward: (p, gradOutput) => features.backward(p, embedded.backward(p, gradOutput)!),
      };
    },
  };
}

/**
 * CLIP (Radford et al. 2021): an image encoder (the run's backbone) and a text encoder
 * (causal, its end-of-text token's features), each with a linear projection without bias to
 * a shared width, L2-normalised; the symmetric cross-entropy of the image–text similarity
 * matrix of a batch at a learnable temperature (logit scale ln(1/0.07) at the start, the
 * scale clamped at 100). One view per image — cropped a little, neither flipped nor
 * colour-jittered, as captions speak of colours and places. The checkpoint's backbone is the
 * image encoder; the text encoder is `method.text.*`, the projections
 * `method.image_projection.weight` and `method.text_projection.weight`, the scale
 * `method.logit_scale`.
 */
export const clip: Method<ClipOptions> = {
  name: "clip",
  title: "CLIP",
  encoder: "the image encoder",
  modality: "captioned images",
  defaults: { projectionDim: 64 },
  options: [{
    key: "projectionDim",
    flag: "--projection-dim",
    kind: "positiveInteger",
    description: "width of the embedding images and texts share",
  }],
  recipes: {
    // OpenCLIP's optimiser (AdamW, betas (0.9, 0.98), weight decay 0.1 on weights, warm-up
    // then cosine) at a rate for a short run on the synthetic captions.
    synthetic: {
      dataset: { name: "synthetic-captions" },
      text: textEncoderConfig("bytes", {
        contextLength: 64,
        dim: 64,
        depth: 2,
        heads: 2,
        causal: true,
        pooling: "last",
      }),
      optimizer: "adamw",
      betas: [0.9, 0.98],
      learningRate: 1e-3,
      weightDecay: 0.1,
      excludeBiasAndNorm: true,
      warmupEpochs: 1,
      schedule: "cosine",
    },
  },
  validate(options) {
    return checkOptions(this, options);
  },
  views(_options, base) {
    return [{
      count: 1,
      augment: {
        ...base,
        crop: { scale: [0.8, 1], ratio: [3 / 4, 4 / 3] },
        flip: 0,
        jitter: null,
        grayscale: 0,
        blur: null,
        solarize: null,
      },
    }];
  },
  text(_options, encoder) {
    return {
      tokenizer: encoder.tokenizer,
      sequenceLength: encoder.contextLength,
      masking: null,
      pairs: false,
    };
  },
  build({ gpu, backbone: imageConfig, text: textConfig, seed }, options) {
    if (!textConfig) throw new SelfsupError("CLIP needs a text encoder (--text-dim and the rest)");
    if (imageConfig.name === "text") {
      throw new SelfsupError("CLIP's --backbone is its image encoder: resnet18 or vit");
    }
    const image = createBackbone(imageConfig);
    const text = new TextEncoder(textConfig);
    const e = options.projectionDim;
    const imageProjection = new Linear(image.featureDim, e, { bias: null });
    const textProjection = new Linear(text.featureDim, e, { bias: null });
    const logitScale = new Parameter([1], "embedding", constant(clipInitialLogitScale));
    const trainable = new ParameterBlock(gpu, [
      ...prefixed("backbone", image),
      ...prefixed("text", text),
      ...prefixed("image_projection", imageProjection),
      ...prefixed("text_projection", textProjection),
      ["logit_scale", logitScale],
    ]);
    initializeBlock(trainable, seed);
    return {
      backbone: image,
      trainable,
      state: new Map(),
      record(program, { views, text: inputs }) {
        const [images] = views;
        if (views.length !== 1 || !inputs) throw new Error("CLIP takes one view group and text");
        const train = { train: true, inputGrad: false };
        const imagePass = projected(image, imageProjection).forward(program, images, train);
        const textPass = projected(text, textProjection).forward(program, inputs.tokens, train);
        const ni = l2NormalizeForward(program, imagePass.output);
        const nt = l2NormalizeForward(program, textPass.output);
        const out = clipLoss(program, ni.y, nt.y, logitScale);
        imagePass.backward(program, l2NormalizeBackward(program, ni.y, ni.norms, out.gradImages));
        textPass.backward(program, l2NormalizeBackward(program, nt.y, nt.norms, out.gradTexts));
        program.keep(out.loss, ni.y);
        return { loss: out.loss, embeddings: ni.y };
      },
      prepare() {},
      evaluate: (data) =>
        zeroShotAndRetrieval({
          image: projected(image, imageProjection),
          text: projected(text, textProjection),
        }, data),
      destroy() {
        trainable.destroy();
      },
    };
  },
};

/** The rank of `own` among `row`'s values (0: the largest); ties count against it. */
function rankOf(row: Float64Array, own: number): number {
  let rank = 0;
  for (let j = 0; j < row.length; j++) if (j !== own && row[j] >= row[own]) rank++;
  return rank;
}

/**
 * CLIP's evaluation on held-out captioned images: zero-shot classification (each image to
 * the class whose prompt "a photo of a {class}" embeds nearest) and retrieval — the recall
 * at 1 and 5 of each image's own caption among all captions, and of each caption's image.
 */
async function zeroShotAndRetrieval(
  towers: { image: Backbone; text: Backbone },
  data: MethodEvaluationData,
): Promise<Record<string, number>> {
  const test = data.test;
  if (!hasCaptions(test)) throw new SelfsupError("CLIP evaluates on captioned images");
  const e = towers.image.featureDim;
  const images = unitRows(await data.extract(towers.image, test.images), e);
  const embedText = async (dataset: TextDataset) =>
    unitRows(await data.extract(towers.text, dataset), e);
  const classes = test.classNames;
  const prompts = await embedText(
    new ListTextDataset(
      classes.map((c) => [clipPrompt(c)]),
      Int32Array.from(classes, (_, i) => i),
      classes,
    ),
  );
  const captions = await embedText((test as CaptionedDataset).captions);
  const n = test.length;
  const similarity = (a: Float32Array, i: number, b: Float32Array, j: number) => {
    let s = 0;
    for (let c = 0; c < e; c++) s += a[i * e + c] * b[j * e + c];
    return s;
  };
  let zeroShot = 0;
  const row = new Float64Array(classes.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < classes.length; k++) row[k] = similarity(images, i, prompts, k);
    if (rankOf(row, test.label(i)) === 0) zeroShot++;
  }
  const recall = { i2t1: 0, i2t5: 0, t2i1: 0, t2i5: 0 };
  const line = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) line[j] = similarity(images, i, captions, j);
    const rank = rankOf(line, i);
    recall.i2t1 += rank < 1 ? 1 : 0;
    recall.i2t5 += rank < 5 ? 1 : 0;
    for (let j = 0; j < n; j++) line[j] = similarity(images, j, captions, i);
    const back = rankOf(line, i);
    recall.t2i1 += back < 1 ? 1 : 0;
    recall.t2i5 += back < 5 ? 1 : 0;
  }
  return {
    zero_shot_accuracy: zeroShot / n,
    image_to_text_recall_at_1: recall.i2t1 / n,
    image_to_text_recall_at_5: recall.i2t5 / n,
    text_to_image_recall_at_1: recall.t2i1 / n,
    text_to_image_recall_at_5: recall.t2i5 / n,
  };
}
