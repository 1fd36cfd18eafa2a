import type { Program } from "../gpu/gpu.ts";
import {
  batchNormBackwardCombineKernel,
  batchNormBackwardInputKernel,
  batchNormBackwardReduceKernel,
  batchNormBackwardReduceReluKernel,
  batchNormBackwardSmallKernel,
  batchNormBackwardSmallReluKernel,
  batchNormEvalStatsKernel,
  batchNormForwardKernel,
  batchNormForwardReluKernel,
  batchNormForwardResidualKernel,
  batchNormSplitExpandKernel,
  batchNormSplitFoldKernel,
  batchNormStatsCombineKernel,
  batchNormStatsKernel,
  batchNormStatsSmallKernel,
} from "../gpu/kernels/batch_norm.ts";
import { f32, inPrecision, precisionOf } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { SelfsupError } from "../errors.ts";
import { constant } from "./init.ts";
import {
  type Entry,
  type Forward,
  type ForwardOptions,
  type Layer,
  Parameter,
  RunningStat,
} from "./module.ts";

/** Batch norm hyperparameters, PyTorch's defaults. */
export interface BatchNormOptions {
  /** Weight of the batch statistics in the running-statistic update. */
  momentum?: number;
  eps?: number;
}

/**
 * What batch norm's passes may do besides normalising, saving passes over the activations:
 * y = max(bn(x) + residual, 0) forward, and ReLU's backward folded into batch norm's.
 */
export interface BatchNormFusion {
  /** A ReLU after batch norm (and after the residual, when there is one). */
  readonly relu?: boolean;
  /** A tensor shaped as the input added before the ReLU: a ResNet block's shortcut. */
  readonly residual?: Tensor;
}

/** What the backward pass of a batch norm needs from its forward pass. */
export interface BatchNormSaved {
  /** The forward input [N, C, H, W]. */
  readonly input: Tensor;
  /** Per channel (mean, 1/sqrt(var + eps)) as normalised with: [C, 2]. */
  readonly stats: Tensor;
  /** Whether the statistics were the batch's (training) or the running ones. */
  readonly train: boolean;
  /** The output, when a ReLU was fused: the gradient passes where it is positive. */
  readonly reluOutput?: Tensor;
}

/** Batch norm's backward pass, recorded up to its input-gradient pass. */
export interface BatchNormGradients {
  /**
   * The gradient that reached batch norm's output: behind a fused ReLU, the output gradient
   * masked by it, which is also the gradient of a fused residual.
   */
  readonly normalized: Tensor;
  /**
   * Records the input-gradient pass and returns its result. Recorded on demand, so that a
   * residual's shortcut can run its backward pass first, before the input gradient is live.
   */
  inputGradient(): Tensor;
}

// The reductions over N·H·W run in two stages: chunks of this many values per workgroup of 64
// invocations, then one workgroup per channel merging its chunks. Chunks keep a discrete GPU
// busy when a few channels hold a million values each; fewer, longer ones suit llvmpipe.
const chunkValues = { cpu: 64 * 256, gpu: 64 * 32 };
// Up to this many values a channel — 4 for each of the 64 invocations of a chunk's workgroup —
// one invocation per channel reads them all in one pass (batch_norm_stats_small,
// batch_norm_backward_small): a workgroup per chunk would leave most of its invocations idle,
// and the second stage costs a dispatch of its own. Small maps and small groups of split
// batch norm (MoCo) have such channels.
const smallValues = 256;
const reduceWorkgroup = 64;
// Invocations the elementwise kernels aim for: each loops over images g, g + groups, ….
const elementwiseTarget = { cpu: 1 << 12, gpu: 1 << 18 };

function nchw(x: Tensor): [number, number, number] {
  if (x.shape.length !== 4) throw new Error(`Batch norm expects NCHW input, got [${x.shape}]`);
  const [n, c, h, w] = x.shape;
  return [n, c, h * w];
}

// The chunking of a per-channel reduction, and the uniform parameters of its first stage.
function chunking(program: Program, x: Tensor) {
  const [n, c, hw] = nchw(x);
  const count = n * hw;
  const chunk = Math.min(chunkValues[program.gpu.adapterClass], count);
  const chunks = Math.ceil(count / chunk);
  const params = [
    hw,
    c,
    count,
    chunk,
    chunks,
    Math.floor(reduceWorkgroup / hw) * c * hw + (reduceWorkgroup % hw),
    reduceWorkgroup % hw,
  ];
  return { c, count, chunk, chunks, params };
}

/** Whether a channel of x has few enough values for the one-pass kernels. */
function isSmall(x: Tensor): boolean {
  const [n, , hw] = nchw(x);
  return n * hw <= smallValues;
}

// Grid and parameters of the elementwise kernels.
function elementwise(program: Program, x: Tensor): { grid: number; params: number[] } {
  const [n, c, hw] = nchw(x);
  const chw = c * hw;
  const groups = Math.min(
    n,
    Math.max(1, Math.floor(elementwiseTarget[program.gpu.adapterClass] / chw)),
  );
  return { grid: Math.ceil((chw * groups) / 256), params: [chw, hw, n, groups] };
}

/**
 * Records batch norm's forward pass over x [N, C, H, W]. In training mode it normalises with
 * the batch statistics (biased variance) and updates the running statistics in place
 * (momentum, unbiased variance); otherwise it normalises with the running statistics. A
 * fused ReLU and residual (see {@link BatchNormFusion}) are applied in the same pass. The
 * output is in the precision of x (and the residual, which must agree); the parameters, the
 * statistics and the arithmetic are f32.
 */
export function batchNormForward(
  program: Program,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  { train, momentum = 0.1, eps = 1e-5, relu = false, residual }:
    & { train: boolean }
    & BatchNormOptions
    & BatchNormFusion,
): { output: Tensor; saved: BatchNormSaved } {
  const [n, c, hw] = nchw(x);
  for (const t of [weight, bias, runningMean, runningVar]) {
    if (t.size !== c) throw new Error(`Batch norm over ${c} channels got a [${t.shape}] tensor`);
  }
  if (residual && (!relu || residual.size !== x.size)) {
    throw new Error(
      `Batch norm fuses a residual [${residual.shape}] shaped as its input and a ReLU`,
    );
  }
  const precision = precisionOf(x, ...(residual ? [residual] : []));
  const stats = program.temp([c, 2], "batch norm statistics");
  if (train) {
    if (n * hw < 2) {
      throw new SelfsupError(
        `Batch norm in training mode needs more than 1 value per channel, got input [${x.shape}]`,
      );
    }
    if (isSmall(x)) {
      program.dispatch(
        inPrecision(batchNormStatsSmallKernel, precision),
        [x, stats, runningMean, runningVar],
        Math.ceil(c / 64),
        [hw, c, n, f32(momentum), f32(eps)],
      );
    } else {
      const chunks = chunking(program, x);
      const partial = program.temp([c, chunks.chunks, 2], "batch norm partial statistics");
      const kernel = inPrecision(batchNormStatsKernel, precision);
      program.dispatch(kernel, [x, partial], c * chunks.chunks, chunks.params);
      program.dispatch(
        batchNormStatsCombineKernel,
        [partial, stats, runningMean, runningVar],
        c,
        [c, chunks.count, chunks.chunk, chunks.chunks, f32(momentum), f32(eps)],
      );
    }
  } else {
    program.dispatch(
      batchNormEvalStatsKernel,
      [runningMean, runningVar, stats],
      Math.ceil(c / 64),
      [c, f32(eps)],
    );
  }
  const output = program.temp(
    x.shape,
    relu ? "batch norm and relu output" : "batch norm output",
    precision,
  );
  const { grid, params } = elementwise(program, x);
  const kernel = residual
    ? batchNormForwardResidualKernel
    : relu
    ? batchNormForwardReluKernel
    : batchNormForwardKernel;
  const tensors = [x, stats, weight, bias, output, ...(residual ? [residual] : [])];
  program.dispatch(inPrecision(kernel, precision), tensors, grid, params);
  return { output, saved: { input: x, stats, train, reluOutput: relu ? output : undefined } };
}

/**
 * Records batch norm's backward pass: accumulates (+=) the γ and β gradients and, when
 * `inputGrad`, returns the input gradient (overwritten), which in training mode includes the
 * path through the batch statistics.
 */
export function batchNormBackward(
  program: Program,
  saved: BatchNormSaved,
  gradY: Tensor,
  weight: Tensor,
  gradWeight: Tensor,
  gradBias: Tensor,
  inputGrad = true,
): Tensor | undefined {
  const gradients = batchNormGradients(program, saved, gradY, weight, gradWeight, gradBias);
  return inputGrad ? gradients.inputGradient() : undefined;
}

/**
 * Records batch norm's backward reductions (accumulating the γ and β gradients) as
 * {@link batchNormBackward}, and returns the gradient that reached the normalised output and
 * the input-gradient pass. Behind a fused ReLU the reductions read gy masked by the forward
 * output and store it (a fused residual's gradient), where a separate ReLU pass read and
 * wrote it once more. The gradients that flow on are in the precision of the forward input
 * and gy (which must agree); the γ and β gradients and the reductions are f32.
 */
export function batchNormGradients(
  program: Program,
  saved: BatchNormSaved,
  gradY: Tensor,
  weight: Tensor,
  gradWeight: Tensor,
  gradBias: Tensor,
): BatchNormGradients {
  const { input: x, stats, train, reluOutput } = saved;
  if (gradY.size !== x.size) {
    throw new Error(`Batch norm gradient [${gradY.shape}] for input [${x.shape}]`);
  }
  const [n, c, hw] = nchw(x);
  const precision = precisionOf(x, gradY);
  const coefficients = program.temp([c, 4], "batch norm input-gradient coefficients");
  const normalized = reluOutput
    ? program.temp(x.shape, "gradient behind the relu", precision)
    : gradY;
  const masking = reluOutput ? [reluOutput, normalized] : [];
  if (isSmall(x)) {
    program.dispatch(
      inPrecision(
        reluOutput ? batchNormBackwardSmallReluKernel : batchNormBackwardSmallKernel,
        precision,
      ),
      [x, gradY, stats, weight, gradWeight, gradBias, coefficients, ...masking],
      Math.ceil(c / 64),
      [hw, c, n, train ? 1 : 0],
    );
  } else {
    const chunks = chunking(program, x);
    const partial = program.temp([c, chunks.chunks, 2], "batch norm partial gradient sums");
    program.dispatch(
      inPrecision(
        reluOutput ? batchNormBackwardReduceReluKernel : batchNormBackwardReduceKernel,
        precision,
      ),
      [x, gradY, stats, partial, ...masking],
      c * chunks.chunks,
      chunks.params,
    );
    program.dispatch(
      batchNormBackwardCombineKernel,
      [partial, stats, weight, gradWeight, gradBias, coefficients],
      c,
      [c, chunks.chunks, chunks.count, train ? 1 : 0],
    );
  }
  return {
    normalized,
    inputGradient: () => {
      const gradX = program.temp(x.shape, "batch norm input gradient", precision);
      const { grid, params } = elementwise(program, x);
      program.dispatch(
        inPrecision(batchNormBackwardInputKernel, precision),
        [x, normalized, coefficients, gradX],
        grid,
        params,
      );
      return gradX;
    },
  };
}

/**
 * A recorded batch norm pass whose backward gives, besides the input gradient, the gradient
 * behind its fused ReLU: that of a fused residual.
 */
export interface BatchNormPass {
  readonly output: Tensor;
  /**
   * Records the backward pass up to the residual's gradient (the output gradient, masked by a
   * fused ReLU); `input` records the input gradient's pass (when the forward options asked
   * for it).
   */
  backward(
    program: Program,
    gradOutput: Tensor,
  ): { residual: Tensor; input: () => Tensor | undefined };
}

/**
 * 2-D batch normalisation over NCHW inputs, as PyTorch's `nn.BatchNorm2d`: γ (`weight`,
 * ones) and β (`bias`, zeros), and the running mean (zeros) and variance (ones) used in
 * evaluation mode. `num_batches_tracked` is not kept here: momentum makes it unused.
 */
export class BatchNorm2d implements Layer {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: RunningStat;
  readonly runningVar: RunningStat;
  readonly momentum: number;
  readonly eps: number;

  constructor(readonly channels: number, { momentum = 0.1, eps = 1e-5 }: BatchNormOptions = {}) {
    this.weight = new Parameter([channels], "norm", constant(1));
    this.bias = new Parameter([channels], "norm", constant(0));
    this.runningMean = new RunningStat([channels], constant(0));
    this.runningVar = new RunningStat([channels], constant(1));
    this.momentum = momentum;
    this.eps = eps;
  }

  entries(): Entry[] {
    return [
      ["weight", this.weight],
      ["bias", this.bias],
      ["running_mean", this.runningMean],
      ["running_var", this.runningVar],
    ];
  }

  /** The layer's pass; with `relu`, followed by a ReLU fused into its kernels. */
  forward(
    program: Program,
    input: Tensor,
    options: ForwardOptions,
    { relu = false }: { relu?: boolean } = {},
  ): Forward {
    const pass = this.#pass(program, input, options, { relu });
    return {
      output: pass.output,
      backward: (p, gradOutput) => pass.backward(p, gradOutput).input(),
    };
  }

  /** y = max(bn(input) + residual, 0) in one pass: a ResNet block's second batch norm. */
  forwardResidual(
    program: Program,
    input: Tensor,
    residual: Tensor,
    options: ForwardOptions,
  ): BatchNormPass {
    return this.#pass(program, input, options, { relu: true, residual });
  }

  #pass(
    program: Program,
    input: Tensor,
    options: ForwardOptions,
    fusion: BatchNormFusion,
  ): BatchNormPass {
    const splits = options.train ? options.batchNormSplits ?? 1 : 1;
    if (splits > 1) return this.#splitForward(program, input, splits, options.inputGrad, fusion);
    const { output, saved } = batchNormForward(
      program,
      input,
      this.weight.value,
      this.bias.value,
      this.runningMean.value,
      this.runningVar.value,
      { train: options.train, momentum: this.momentum, eps: this.eps, ...fusion },
    );
    return {
      output,
      backward: (p, gradOutput) => {
        const grads = batchNormGradients(
          p,
          saved,
          gradOutput,
          this.weight.value,
          this.weight.grad,
          this.bias.grad,
        );
        return {
          residual: grads.normalized,
          input: () => options.inputGrad ? grads.inputGradient() : undefined,
        };
      },
    };
  }

  /**
   * Batch norm over S groups of the batch, as MoCo's SplitBatchNorm: [N, C, H, W] viewed as
   * [N/S, S·C, H, W] with γ, β and the running statistics repeated S times; the running
   * statistics come back as the mean of the groups', the γ and β gradients as their sum.
   */
  #splitForward(
    program: Program,
    input: Tensor,
    splits: number,
    inputGrad: boolean,
    { relu, residual }: BatchNormFusion,
  ): BatchNormPass {
    const [n, c, h, w] = input.shape;
    if (input.shape.length !== 4 || n % splits !== 0) {
      throw new SelfsupError(
        `Split batch norm needs a batch divisible by its ${splits} groups, got [${input.shape}]`,
      );
    }
    const wide = splits * c;
    // Each repeat starts at a multiple of 64 elements, so that it can be bound on its own.
    const stride = Math.ceil(wide / 64) * 64;
    const repeated = program.temp([4 * stride], "split batch norm parameters and statistics");
    program.dispatch(
      batchNormSplitExpandKernel,
      [
        this.weight.value,
        this.bias.value,
        this.runningMean.value,
        this.runningVar.value,
        repeated,
      ],
      Math.ceil(wide / 256),
      [c, splits, stride],
    );
    const [weight, bias, runningMean, runningVar] = [0, 1, 2, 3].map((k) =>
      repeated.slice(k * stride, [wide])
    );
    const view = input.reshape([n / splits, wide, h, w]);
    const { output, saved } = batchNormForward(
      program,
      view,
      weight,
      bias,
      runningMean,
      runningVar,
      {
        train: true,
        momentum: this.momentum,
        eps: this.eps,
        relu,
        residual: residual?.reshape(view.shape),
      },
    );
    const fold = (p: Program, pair: Tensor, first: Tensor, second: Tensor, sum: boolean) =>
      p.dispatch(batchNormSplitFoldKernel, [pair, first, second], Math.ceil(c / 64), [
        c,
        splits,
        stride,
        f32(sum ? 1 : 1 / splits),
        f32(sum ? 1 : 0),
      ]);
    fold(
      program,
      repeated.slice(2 * stride, [2 * stride]),
      this.runningMean.value,
      this.runningVar.value,
      false,
    );
    return {
      output: output.reshape(input.shape),
      backward: (p, gradOutput) => {
        const grads = p.temp([2 * stride], "split batch norm parameter gradients");
        p.clear(grads);
        const gradients = batchNormGradients(
          p,
          saved,
          gradOutput.reshape(view.shape),
          weight,
          grads.slice(0, [wide]),
          grads.slice(stride, [wide]),
        );
        fold(p, grads, this.weight.grad, this.bias.grad, true);
        return {
          residual: gradients.normalized.reshape(input.shape),
          input: () => inputGrad ? gradients.inputGradient().reshape(input.shape) : undefined,
        };
      },
    };
  }
}

/**
 * Batch normalisation over features [N, D], as PyTorch's `nn.BatchNorm1d`: the 2-D layer on
 * [N, D, 1, 1], with the same parameter names. BYOL's projector and predictor use it.
 */
export class BatchNorm1d implements Layer {
  readonly #norm: BatchNorm2d;

  constructor(readonly features: number, options: BatchNormOptions = {}) {
    this.#norm = new BatchNorm2d(features, options);
  }

  entries(): Entry[] {
    return this.#norm.entries();
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    if (input.shape.length !== 2 || input.shape[1] !== this.features) {
      throw new Error(`BatchNorm1d(${this.features}) got input [${input.shape}]`);
    }
    const [n, d] = input.shape;
    const pass = this.#norm.forward(program, input.reshape([n, d, 1, 1]), options);
    return {
      output: pass.output.reshape([n, d]),
      backward: (p, gradOutput) =>
        pass.backward(p, gradOutput.reshape([n, d, 1, 1]))?.reshape([n, d]),
    };
  }
}
