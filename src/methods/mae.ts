import { vitSmallDefault } from "../nn/vit.ts";
import { Random } from "../data/random.ts";
import { type Gpu, Program } from "../gpu/gpu.ts";
import type { DType, Tensor } from "../gpu/tensor.ts";
import { maskedMse } from "../loss/masked_mse.ts";
import { describeBackbone } from "../nn/backbone.ts";
import { constant, normal, xavierUniform } from "../nn/init.ts";
import { LayerNorm } from "../nn/layer_norm.ts";
import { Linear } from "../nn/linear.ts";
import { insertMaskTokens, type MaskTokenIndex, maskTokenSource } from "../nn/mask_tokens.ts";
import {
  type Entry,
  type Forward,
  type ForwardOptions,
  type Initializer,
  Parameter,
  prefixed,
  RunningStat,
} from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { HalfPrecision } from "../nn/precision.ts";
import { Sequential } from "../nn/sequential.ts";
import { addPositions, gatherTokens, scatterTokens, sincosPositions } from "../nn/tokens.ts";
import { Block, VisionTransformer } from "../nn/vit.ts";
import { SelfsupError } from "../errors.ts";
import {
  checkOptions,
  initializeBlock,
  type Method,
  type Reconstructions,
  type StepInputs,
} from "./method.ts";

/** MAE's options. */
export interface MaeOptions {
  /** Fraction of each image's patches hidden from the encoder. */
  readonly maskRatio: number;
  /** Width, blocks and attention heads of the decoder. */
  readonly decoderDim: number;
  readonly decoderDepth: number;
  readonly decoderHeads: number;
  /** Predict each patch normalised by its own mean and standard deviation (norm_pix_loss). */
  readonly normPixLoss: boolean;
}

/** Streams of the training masks (one substream per step) and of the preview's masks. */
const maskStream = 0x6d61736b;
const previewStream = 0x70726576;
/** MAE's ε under the square root of a target patch's variance. */
const pixelEps = 1e-6;

/**
 * MAE's decoder (models_mae.py, names as there): the encoder's tokens projected to the
 * decoder's width, mask tokens at the masked patches' places, fixed 2-D sine-cosine
 * positions, transformer blocks, a LayerNorm and a linear prediction of every patch's
 * 3·p² pixels in MAE's order (ky, kx, c).
 */
class MaeDecoder {
  readonly embed: Linear;
  readonly maskToken: Parameter;
  readonly positions: RunningStat;
  readonly blocks: readonly Block[];
  readonly norm: LayerNorm;
  readonly predict: Linear;
  readonly #head: Sequential;

  constructor(encoder: VisionTransformer, options: MaeOptions) {
    const { dim, patchSize, imageSize } = encoder.config;
    const d = options.decoderDim;
    const zeroBias = { bias: constant(0) };
    this.embed = new Linear(dim, d, zeroBias);
    this.maskToken = new Parameter([1, 1, d], "embedding", normal(0.02));
    const grid = imageSize / patchSize;
    this.positions = new RunningStat([1, 1 + encoder.patches, d], () => sincosPositions(d, grid));
    this.blocks = Array.from(
      { length: options.decoderDepth },
      () => new Block(d, options.decoderHeads),
    );
    this.norm = new LayerNorm(d);
    this.predict = new Linear(d, 3 * patchSize * patchSize, zeroBias);
    this.#head = new Sequential([...this.blocks, this.norm, this.predict]);
  }

  entries(): Entry[] {
    return [
      ...prefixed("decoder_embed", this.embed),
      ["mask_token", this.maskToken],
      ["decoder_pos_embed", this.positions],
      ...this.blocks.flatMap((block, i) => prefixed(`decoder_blocks.${i}`, block)),
      ...prefixed("decoder_norm", this.norm),
      ...prefixed("decoder_pred", this.predict),
    ];
  }

  /** The encoded tokens [N, 1 + K, D] → every patch's prediction [N, 1 + L, 3·p²]. */
  forward(
    program: Program,
    latent: Tensor,
    index: MaskTokenIndex,
    options: ForwardOptions,
  ): Forward {
    const embedded = this.embed.forward(program, latent, options);
    const inner = { ...options, inputGrad: true };
    const tokens = insertMaskTokens(program, embedded.output, this.maskToken, index, true);
    // The positions are fixed: their add passes the gradient through unchanged.
    const positioned = addPositions(program, tokens.output, this.positions.value, 0);
    const head = this.#head.forward(program, positioned, inner);
    return {
      output: head.output,
      backward: (p, gradOutput) =>
        embedded.backward(p, tokens.backward(p, head.backward(p, gradOutput)!)!),
    };
  }
}

/**
 * The visible patches of each image in the step after `step` updates: MAE's per-sample
 * random masking (`random_masking`), argsort of uniform noise per image, ascending — the
 * first `keep` of each row are visible, the rest masked. A function of the seed and the
 * step only, so a resumed run masks as the uninterrupted one would. Returns ids_shuffle,
 * [batchSize, patches] row-major.
 */
export function maeShuffles(
  seed: number,
  step: number,
  batchSize: number,
  patches: number,
): Uint32Array {
  return shuffles(new Random(seed, maskStream, step), batchSize, patches);
}

/**
 * The masks of the images of MAE's `preview`: ids_shuffle [count, patches] from a
 * stream of their own, so that image k is masked the same way at every call.
 */
export function maePreviewShuffles(seed: number, count: number, patches: number): Uint32Array {
  return shuffles(new Random(seed, previewStream), count, patches);
}

function shuffles(random: Random, batchSize: number, patches: number): Uint32Array {
  const out = new Uint32Array(batchSize * patches);
  const noise = new Float64Array(patches);
  const order = Array.from({ length: patches }, (_, i) => i);
  for (let n = 0; n < batchSize; n++) {
    for (let l = 0; l < patches; l++) noise[l] = random.float();
    // Array.prototype.sort is stable: equal noise (all but impossible) keeps patch order.
    order.sort((a, b) => noise[a] - noise[b]);
    out.set(order, n * patches);
    order.sort((a, b) => a - b);
  }
  return out;
}

/** The patches MAE's encoder sees of L: ⌊L·(1 − ratio)⌋, as its `int(L * (1 - mask_ratio))`. */
export function visiblePatches(patches: number, maskRatio: number): number {
  return Math.trunc(patches * (1 - maskRatio));
}

/** Host arrays of the index tensors of one step's masks, from ids_shuffle. */
export interface MaskArrays {
  /** [N, K]: the visible patches, in shuffle order (the encoder's token order). */
  readonly visible: Uint32Array;
  /** [N, 1 + L]: for each decoder token, its encoder token or the mask token. */
  readonly source: Uint32Array;
  /** [N, 1 + K]: each encoder token's place among the decoder's (class token at 0). */
  readonly place: Uint32Array;
  /** [N, L]: 1 for masked patches, 0 for visible ones (MAE's `mask`). */
  readonly mask: Float32Array;
}

/** The index tensors of MAE's masking for ids_shuffle [N, L] with `keep` visible patches. */
export function maskArrays(ids: Uint32Array, patches: number, keep: number): MaskArrays {
  const n = ids.length / patches;
  const visible = new Uint32Array(n * keep);
  const source = new Uint32Array(n * (1 + patches)).fill(maskTokenSource);
  const place = new Uint32Array(n * (1 + keep));
  const mask = new Float32Array(n * patches).fill(1);
  for (let i = 0; i < n; i++) {
    source[i * (1 + patches)] = 0;
    for (let r = 0; r < keep; r++) {
      const patch = ids[i * patches + r];
      visible[i * keep + r] = patch;
      source[i * (1 + patches) + 1 + patch] = 1 + r;
      place[i * (1 + keep) + 1 + r] = 1 + patch;
      mask[i * patches + patch] = 0;
    }
  }
  return { visible, source, place, mask };
}

/** The GPU tensors of one batch's masks. */
class MaskTensors implements MaskTokenIndex {
  readonly visible: Tensor;
  readonly source: Tensor;
  readonly place: Tensor;
  readonly mask: Tensor;
  /** [N, 1] zeros: the class token's place, whose features the collapse monitor watches. */
  readonly first: Tensor;

  constructor(
    make: (shape: number[], label: string, dtype: DType) => Tensor,
    readonly gpu: Gpu,
    readonly batchSize: number,
    readonly patches: number,
    readonly keep: number,
  ) {
    const n = batchSize;
    this.visible = make([n, keep], "MAE visible patches", "u32");
    this.source = make([n, 1 + patches], "MAE decoder token sources", "u32");
    this.place = make([n, 1 + keep], "MAE encoder token places", "u32");
    this.mask = make([n, patches], "MAE mask", "f32");
    this.first = make([n, 1], "MAE class token index", "u32");
    gpu.write(this.first, new Uint32Array(n));
  }

  write(ids: Uint32Array): void {
    const arrays = maskArrays(ids, this.patches, this.keep);
    this.gpu.write(this.visible, arrays.visible);
    this.gpu.write(this.source, arrays.source);
    this.gpu.write(this.place, arrays.place);
    this.gpu.write(this.mask, arrays.mask);
  }

  get tensors(): Tensor[] {
    return [this.visible, this.source, this.place, this.mask, this.first];
  }
}

/**
 * MAE's initialisation (models_mae.py `initialize_weights`): every linear weight and the
 * patch embedding's (as a [D, 3·p·p] matrix) Xavier-uniform, the class and mask tokens
 * normal with std 0.02; the rest as the layers make them (zero linear biases, LayerNorms
 * ones and zeros, the patch embedding's bias PyTorch's Conv2d default, fixed positions).
 */
function maeInitializer(name: string, parameter: Parameter): Initializer {
  if (name === "backbone.cls_token" || name === "mask_token") return normal(0.02);
  if (parameter.kind === "weight") {
    const [fanOut, ...rest] = parameter.shape;
    return xavierUniform(rest.reduce((a, b) => a * b, 1), fanOut);
  }
  return parameter.init;
}

/**
 * MAE (He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners"), following the
 * authors' models_mae.py: each image's patches are masked at random (`maskRatio` of them, a
 * fresh mask per image and step); the ViT encoder sees only the visible patches and its
 * class token; a light decoder of its own width and depth predicts the pixels of every
 * patch from the encoded tokens and mask tokens; the loss is the mean squared error on the
 * masked patches only, against each patch's pixels normalised by their own mean and
 * variance (`normPixLoss`). One view per image, cropped and flipped only. The checkpoint's
 * backbone is the encoder under timm's names; the decoder is `method.decoder_*` and
 * `method.mask_token`, MAE's names.
 */
export const mae: Method<MaeOptions> = {
  name: "mae",
  title: "MAE",
  encoder: "the encoder",
  defaults: {
    maskRatio: 0.75,
    decoderDim: 128,
    decoderDepth: 2,
    decoderHeads: 4,
    normPixLoss: true,
  },
  options: [
    {
      key: "maskRatio",
      flag: "--mask-ratio",
      kind: "fraction",
      description: "fraction of each image's patches masked",
    },
    {
      key: "decoderDim",
      flag: "--decoder-dim",
      kind: "positiveInteger",
      description: "width of the decoder (a multiple of 4 and of its heads)",
    },
    {
      key: "decoderDepth",
      flag: "--decoder-depth",
      kind: "positiveInteger",
      description: "transformer blocks of the decoder",
    },
    {
      key: "decoderHeads",
      flag: "--decoder-heads",
      kind: "positiveInteger",
      description: "attention heads of the decoder",
    },
    {
      key: "normPixLoss",
      flag: "--norm-pix-loss",
      kind: "boolean",
      description: "predict patches normalised by their own mean and std",
    },
  ],
  recipes: {
    // solo-learn scripts/pretrain/cifar/mae.yaml (ViT-Small, patch 4; lr 2e-4 at batch 256,
    // warm-up as solo-learn's default); MAE's PRETRAIN.md: AdamW betas (0.9, 0.95), weight
    // decay 0.05 on weights only (1-D parameters excluded), warm-up then cosine.
    cifar: {
      // timm's vit_small (384 wide, 12 blocks, 6 heads) on 32×32 images in 4×4 patches,
      // with MAE's fixed sine-cosine positions.
      backbone: {
        name: "vit",
        imageSize: 32,
        patchSize: 4,
        dim: 384,
        depth: 12,
        heads: 6,
        positions: "sincos",
      },
      maskRatio: 0.75,
      decoderDim: 512,
      decoderDepth: 8,
      decoderHeads: 16,
      normPixLoss: true,
      optimizer: "adamw",
      betas: [0.9, 0.95],
      learningRate: 2e-4,
      weightDecay: 0.05,
      excludeBiasAndNorm: true,
      batchSize: 256,
      warmupEpochs: 10,
      schedule: "cosine",
    },
    // MAE's optimiser at a rate for a short run on the synthetic set: the default ViT's loss
    // fell from 1.90 to about 0.45 in 300 steps of 64 images, 30 of them warm-up.
    synthetic: {
      backbone: { ...vitSmallDefault, name: "vit", positions: "sincos" },
      optimizer: "adamw",
      betas: [0.9, 0.95],
      learningRate: 1.5e-3,
      weightDecay: 0.05,
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
    if (checked.decoderDim % 4 !== 0 || checked.decoderDim % checked.decoderHeads !== 0) {
      throw new SelfsupError(
        `--decoder-dim ${checked.decoderDim} must be a multiple of 4 (sine-cosine positions) ` +
          `and of --decoder-heads ${checked.decoderHeads}`,
      );
    }
    return checked;
  },
  views(_options, base) {
    // MAE's main_pretrain.py: RandomResizedCrop(scale (0.2, 1)) and a horizontal flip only.
    return [{
      count: 1,
      augment: {
        ...base,
        crop: { scale: [0.2, 1], ratio: base.crop?.ratio ?? [3 / 4, 4 / 3] },
        flip: 0.5,
        jitter: null,
        grayscale: 0,
        blur: null,
        solarize: null,
      },
    }];
  },
  build({ gpu, backbone: config, batchSize, seed }, options) {
    if (config.name !== "vit") {
      throw new SelfsupError(
        `MAE needs a Vision Transformer backbone (--backbone vit), not ${describeBackbone(config)}`,
      );
    }
    const encoder = new VisionTransformer(config);
    // In f16 the encoder's pieces run on f16 activations, the decoder and the loss in f32:
    // the boundary HalfPrecision puts around a whole backbone, here around the encoder.
    const half = config.precision === "f16" ? new HalfPrecision(encoder) : undefined;
    const patches = encoder.patches;
    const keep = visiblePatches(patches, options.maskRatio);
    if (keep < 1 || keep >= patches) {
      throw new SelfsupError(
        `--mask-ratio ${options.maskRatio} leaves ${keep} of ${patches} patches visible: ` +
          `MAE needs at least one visible and one masked`,
      );
    }
    const decoder = new MaeDecoder(encoder, options);
    const trainable = new ParameterBlock(gpu, [
      ...prefixed("backbone", encoder),
      ...decoder.entries(),
    ]);
    initializeBlock(trainable, seed, maeInitializer);
    const own = (shape: number[], label: string, dtype: DType) => gpu.tensor(shape, label, dtype);
    const masks = new MaskTensors(own, gpu, batchSize, patches, keep);
    const loss = {
      patchSize: config.patchSize,
      normalize: options.normPixLoss,
      eps: pixelEps,
    };

    /** The encoder on the visible patches: images → encoded tokens [N, 1 + K, D]. */
    const encode = (
      program: Program,
      images: Tensor,
      index: MaskTensors,
      mode: ForwardOptions,
    ): Forward => {
      const embed = encoder.embedPatches(program, images, { ...mode, inputGrad: false });
      const visible = gatherTokens(program, embed.output, index.visible);
      const inner = { ...mode, inputGrad: true };
      const tokens = encoder.prependClassToken(program, visible, inner);
      const encoded = encoder.encode(program, tokens.output, inner);
      return {
        output: encoded.output,
        backward: (p, gradEncoded) => {
          const gradVisible = tokens.backward(p, encoded.backward(p, gradEncoded)!)!;
          return embed.backward(p, scatterTokens(p, gradVisible, index.visible, patches));
        },
      };
    };

    /** The encoder, then the decoder: every patch's prediction. */
    const reconstruct = (
      program: Program,
      images: Tensor,
      index: MaskTensors,
      mode: ForwardOptions,
    ) => {
      // Evaluation-mode passes (the preview) run the f32 network, as HalfPrecision's do.
      const encoded = half && mode.train
        ? half.around(program, images, (x) => encode(program, x, index, mode))
        : encode(program, images, index, mode);
      const classToken = gatherTokens(program, encoded.output, index.first);
      const decoded = decoder.forward(program, encoded.output, index, mode);
      return {
        prediction: decoded.output,
        features: classToken.reshape([index.batchSize, encoder.featureDim]),
        backward(p: Program, gradPrediction: Tensor) {
          encoded.backward(p, decoded.backward(p, gradPrediction)!);
        },
      };
    };

    return {
      backbone: half ?? encoder,
      trainable,
      state: new Map<string, ParameterBlock | Tensor>(),
      record(program: Program, { views }: StepInputs) {
        const [images] = views;
        if (views.length !== 1 || images.shape[0] !== batchSize) {
          throw new Error(`MAE takes one view group of ${batchSize} images, got ${views.length}`);
        }
        const pass = reconstruct(program, images, masks, { train: true, inputGrad: true });
        const out = maskedMse(
          program,
          pass.prediction,
          images,
          masks.mask,
          batchSize * (patches - keep),
          loss,
        );
        pass.backward(program, out.gradInput);
        program.keep(out.loss, pass.features);
        return { loss: out.loss, embeddings: pass.features };
      },
      prepare(step) {
        masks.write(maeShuffles(seed, step, batchSize, patches));
      },
      async preview(images, count) {
        const { imageSize: side, patchSize } = config;
        if (images.length !== count * 3 * side * side) {
          throw new Error(
            `MAE preview of ${count} ${side}×${side} images got ${images.length} values`,
          );
        }
        const program = new Program(gpu, "MAE reconstructions");
        const input = program.tensor([count, 3, side, side], "images");
        const index = new MaskTensors(
          (shape, label, dtype) => program.tensor(shape, label, dtype),
          gpu,
          count,
          patches,
          keep,
        );
        const pass = reconstruct(program, input, index, { train: false, inputGrad: false });
        program.keep(pass.prediction);
        const ids = maePreviewShuffles(seed, count, patches);
        index.write(ids);
        gpu.write(input, images);
        gpu.submit(program);
        const prediction = await gpu.readF32(pass.prediction);
        program.destroy();
        return reconstructions(images, prediction, maskArrays(ids, patches, keep).mask, {
          count,
          side,
          patchSize,
          normalize: options.normPixLoss,
        });
      },
      destroy() {
        for (const t of masks.tensors) gpu.release(t.buffer);
        trainable.destroy();
      },
    };
  },
};

/**
 * The pictures of {@link Reconstructions} from the images, the decoder's prediction
 * [n, 1 + L, 3·p²] and the mask [n, L], in float64 on the host.
 */
export function reconstructions(
  images: Float32Array,
  prediction: Float32Array,
  mask: Float32Array,
  { count, side, patchSize: p, normalize }: {
    count: number;
    side: number;
    patchSize: number;
    normalize: boolean;
  },
): Reconstructions {
  const grid = side / p;
  const patches = grid * grid;
  const size = 3 * p * p;
  const masked = images.slice();
  const reconstruction = new Float32Array(images.length);
  const pasted = images.slice();
  // Element i of a patch in MAE's order (ky, kx, c) → its index in the image [3, side, side].
  const pixel = (n: number, l: number, i: number) => {
    const c = i % 3, kx = Math.floor(i / 3) % p, ky = Math.floor(i / (3 * p));
    const y = Math.floor(l / grid) * p + ky, x = (l % grid) * p + kx;
    return ((n * 3 + c) * side + y) * side + x;
  };
  for (let n = 0; n < count; n++) {
    for (let l = 0; l < patches; l++) {
      let mean = 0, std = 1;
      if (normalize) {
        let sum = 0, squares = 0;
        for (let i = 0; i < size; i++) sum += images[pixel(n, l, i)];
        mean = sum / size;
        for (let i = 0; i < size; i++) squares += (images[pixel(n, l, i)] - mean) ** 2;
        std = Math.sqrt(squares / (size - 1) + pixelEps);
      }
      const hidden = mask[n * patches + l] === 1;
      const row = (n * (1 + patches) + 1 + l) * size;
      for (let i = 0; i < size; i++) {
        const at = pixel(n, l, i);
        reconstruction[at] = prediction[row + i] * std + mean;
        if (hidden) {
          masked[at] = 0;
          pasted[at] = reconstruction[at];
        }
      }
    }
  }
  return {
    shape: [count, 3, side, side],
    original: images.slice(),
    masked,
    reconstruction,
    pasted,
  };
}
