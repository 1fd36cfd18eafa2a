import type { Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * What a parameter is, which decides how optimizers treat it: LARS adapts the learning rate
 * and applies weight decay only to weights, as SimCLR does; biases, norm affine parameters
 * and embeddings (a transformer's class token and learned positions, which timm exempts
 * from weight decay) are excluded.
 */
export type ParameterKind = "weight" | "bias" | "norm" | "embedding";

/** Makes a parameter's or statistic's initial values; `random` is uniform on [0, 1). */
export type Initializer = (size: number, random: () => number) => Float32Array;

/**
 * A learnable tensor. Its value and gradient are views into the flat blocks of a
 * {@link ParameterBlock}, bound when the block is made.
 */
export class Parameter {
  #value?: Tensor;
  #grad?: Tensor;

  constructor(
    readonly shape: readonly number[],
    readonly kind: ParameterKind,
    readonly init: Initializer,
  ) {}

  get value(): Tensor {
    if (!this.#value) throw new Error("Parameter used before its block was allocated");
    return this.#value;
  }

  get grad(): Tensor {
    if (!this.#grad) throw new Error("Parameter used before its block was allocated");
    return this.#grad;
  }

  bind(value: Tensor, grad: Tensor): void {
    this.#value = value;
    this.#grad = grad;
  }
}

/** A non-learnable tensor kept with the model, such as batch norm's running mean. */
export class RunningStat {
  #value?: Tensor;

  constructor(readonly shape: readonly number[], readonly init: Initializer) {}

  get value(): Tensor {
    if (!this.#value) throw new Error("Running statistic used before its block was allocated");
    return this.#value;
  }

  bind(value: Tensor): void {
    this.#value = value;
  }
}

/** A named parameter or running statistic, named as in torchvision's state dict. */
export type Entry = readonly [string, Parameter | RunningStat];

/** How a forward pass runs. */
export interface ForwardOptions {
  /** Batch statistics (and running-statistic updates) in batch norm; else running statistics. */
  readonly train: boolean;
  /**
   * Whether backward must produce the gradient of the input. The network's first layer
   * does not: nothing consumes the gradient of the images.
   */
  readonly inputGrad: boolean;
  /**
   * In training mode, normalise every batch norm over this many groups of the batch with
   * statistics of their own (image n in group n mod S), as MoCo's single-device emulation
   * of shuffle-BN does; 1 or absent for ordinary batch norm.
   */
  readonly batchNormSplits?: number;
  /** The keys attention may look at, for sequences of text; absent: every key (images). */
  readonly attentionMask?: AttentionMask;
}

/**
 * Attention's keys in sequences of tokens: not the padding (tokens equal to `pad`) and, when
 * `causal`, not after the query (a left-to-right text encoder, CLIP's).
 */
export interface AttentionMask {
  /** The sequences' tokens, u32 [N, T]. */
  readonly tokens: Tensor;
  readonly pad: number;
  readonly causal: boolean;
}

/** The recorded forward pass of a layer, and how to record its backward pass. */
export interface Forward {
  readonly output: Tensor;
  /**
   * Records the backward pass: accumulates (+=) parameter gradients and returns the
   * gradient of the input (overwritten, not accumulated), or undefined when the forward
   * was recorded with `inputGrad: false`.
   */
  backward(program: Program, gradOutput: Tensor): Tensor | undefined;
}

/**
 * A layer records its forward pass into a {@link Program} and returns a closure that
 * records the backward pass, so one layer object can serve several programs (a training
 * step and an evaluation pass) with the tensors of each kept apart.
 */
export interface Layer {
  /** Parameters and running statistics, with names relative to this layer. */
  entries(): Entry[];
  forward(program: Program, input: Tensor, options: ForwardOptions): Forward;
}

/** Prefixes the entries of a child layer, as PyTorch names submodules. */
export function prefixed(prefix: string, layer: Layer): Entry[] {
  return layer.entries().map(([name, entry]) => [`${prefix}.${name}`, entry] as const);
}
