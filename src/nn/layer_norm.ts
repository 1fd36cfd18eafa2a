import type { Program } from "../gpu/gpu.ts";
import { f32, inPrecision, precisionOf } from "../gpu/kernel.ts";
import {
  layerNormBackwardInputKernel,
  layerNormBackwardWeightKernel,
  layerNormBackwardWeightReduceKernel,
  layerNormForwardKernel,
} from "../gpu/kernels/transformer.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { constant } from "./init.ts";
import { type Entry, type Forward, type ForwardOptions, type Layer, Parameter } from "./module.ts";

/** What the backward pass of a layer norm needs from its forward pass. */
export interface LayerNormSaved {
  readonly input: Tensor;
  /** Per row (mean, 1/sqrt(var + eps)): [rows, 2]. */
  readonly stats: Tensor;
}

// Rows per partial sum of the γ and β gradients: long chunks suit llvmpipe's few lanes, short
// ones give a GPU thousands of invocations.
const rowsPerChunk = { cpu: 2048, gpu: 64 };

function rowsOf(x: Tensor, d: number): number {
  if (x.shape[x.shape.length - 1] !== d) {
    throw new Error(`LayerNorm(${d}) got input [${x.shape}]`);
  }
  return x.size / d;
}

/**
 * Records y = LayerNorm(x) over the last dimension of x [..., d], with γ and β of size d, in
 * x's precision (γ, β and the statistics f32).
 */
export function layerNormForward(
  program: Program,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps: number,
): { output: Tensor; saved: LayerNormSaved } {
  const d = weight.size;
  const rows = rowsOf(x, d);
  const precision = precisionOf(x);
  const output = program.temp(x.shape, "layer norm output", precision);
  const stats = program.temp([rows, 2], "layer norm statistics");
  program.dispatch(
    inPrecision(layerNormForwardKernel, precision),
    [x, weight, bias, output, stats],
    Math.ceil(rows / 64),
    [rows, d, f32(eps)],
  );
  return { output, saved: { input: x, stats } };
}

/** Records the input gradient of a layer norm (overwritten), in the precision of x and gy. */
export function layerNormBackwardInput(
  program: Program,
  saved: LayerNormSaved,
  gradY: Tensor,
  weight: Tensor,
): Tensor {
  const x = saved.input;
  const rows = rowsOf(x, weight.size);
  const precision = precisionOf(x, gradY);
  const gradX = program.temp(x.shape, "layer norm input gradient", precision);
  program.dispatch(
    inPrecision(layerNormBackwardInputKernel, precision),
    [x, weight, saved.stats, gradY, gradX],
    Math.ceil(rows / 64),
    [rows, weight.size],
  );
  return gradX;
}

/** Records gγ += Σ gy·x̂ and gβ += Σ gy over the rows (parameter gradients accumulate). */
export function layerNormBackwardWeight(
  program: Program,
  saved: LayerNormSaved,
  gradY: Tensor,
  gradWeight: Tensor,
  gradBias: Tensor,
): void {
  const d = gradWeight.size;
  const rows = rowsOf(saved.input, d);
  const perChunk = rowsPerChunk[program.gpu.adapterClass];
  const chunks = Math.ceil(rows / perChunk);
  const params = (accumulate: number) => [rows, d, perChunk, chunks, accumulate];
  const grid = Math.ceil((chunks * d) / 64);
  const inputs = [saved.input, saved.stats, gradY];
  const kernel = inPrecision(layerNormBackwardWeightKernel, precisionOf(saved.input, gradY));
  if (chunks === 1) {
    program.dispatch(kernel, [...inputs, gradWeight, gradBias], grid, params(1));
    return;
  }
  const partW = program.temp([chunks, d], "layer norm weight gradient partial sums");
  const partB = program.temp([chunks, d], "layer norm bias gradient partial sums");
  program.dispatch(kernel, [...inputs, partW, partB], grid, params(0));
  program.dispatch(
    layerNormBackwardWeightReduceKernel,
    [partW, partB, gradWeight, gradBias],
    Math.ceil((2 * d) / 256),
    [d, 1, chunks],
  );
}

/**
 * Layer normalisation over the last dimension, as PyTorch's `nn.LayerNorm(dim, eps)`:
 * γ (`weight`, ones) and β (`bias`, zeros). timm's ViT uses eps 1e-6, the default here.
 */
export class LayerNorm implements Layer {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(readonly dim: number, readonly eps = 1e-6) {
    this.weight = new Parameter([dim], "norm", constant(1));
    this.bias = new Parameter([dim], "norm", constant(0));
  }

  entries(): Entry[] {
    return [["weight", this.weight], ["bias", this.bias]];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const { output, saved } = layerNormForward(
      program,
      input,
      this.weight.value,
      this.bias.value,
      this.eps,
    );
    return {
      output,
      backward: (p, gradOutput) => {
        layerNormBackwardWeight(p, saved, gradOutput, this.weight.grad, this.bias.grad);
        return options.inputGrad
          ? layerNormBackwardInput(p, saved, gradOutput, this.weight.value)
          : undefined;
      },
    };
  }
}
