import type { Program } from "../gpu/gpu.ts";
import {
  l2NormalizeBackwardKernel,
  l2NormalizeForwardKernel,
  l2NormalizeInPlaceKernel,
} from "../gpu/kernels/embedding.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Entry, Forward, ForwardOptions, Layer } from "./module.ts";

function rows(x: Tensor): [number, number] {
  if (x.shape.length !== 2) throw new Error(`L2 normalisation expects [M, D], got [${x.shape}]`);
  return [x.shape[0], x.shape[1]];
}

/**
 * Records y = x / max(‖x‖, 1e-12) for each row of x [M, D], as `F.normalize(x, dim=1)`;
 * returns y and the row norms its backward pass needs.
 */
export function l2NormalizeForward(program: Program, x: Tensor): { y: Tensor; norms: Tensor } {
  const [m, d] = rows(x);
  const y = program.temp([m, d], "normalised rows");
  const norms = program.temp([m], "row norms");
  program.dispatch(l2NormalizeForwardKernel, [x, y, norms], Math.ceil(m / 64), [m, d]);
  return { y, norms };
}

/**
 * Records the input gradient of the row normalisation: overwritten in a new tensor, or added
 * to `into` (a parameter's gradient, which accumulates) and returned.
 */
export function l2NormalizeBackward(
  program: Program,
  y: Tensor,
  norms: Tensor,
  gradY: Tensor,
  into?: Tensor,
): Tensor {
  const [m, d] = rows(y);
  if (gradY.size !== y.size || (into && into.size !== y.size)) {
    throw new Error(`L2 normalisation gradient [${gradY.shape}] into [${into?.shape}]`);
  }
  const gradX = into ?? program.temp([m, d], "normalisation input gradient");
  program.dispatch(l2NormalizeBackwardKernel, [y, norms, gradY, gradX], Math.ceil(m / 64), [
    m,
    d,
    into ? 1 : 0,
  ]);
  return gradX;
}

/** Records x ← x / max(‖x‖, 1e-12) for each row of x [M, D], in place (no gradient). */
export function l2NormalizeInPlace(program: Program, x: Tensor): void {
  const [m, d] = rows(x);
  program.dispatch(l2NormalizeInPlaceKernel, [x], Math.ceil(m / 64), [m, d]);
}

/** Row normalisation to unit length as a layer: embeddings before a cosine-based loss. */
export class L2Normalize implements Layer {
  entries(): Entry[] {
    return [];
  }

  forward(program: Program, input: Tensor, options: ForwardOptions): Forward {
    const { y, norms } = l2NormalizeForward(program, input);
    return {
      output: y,
      backward: (p, gradOutput) =>
        options.inputGrad ? l2NormalizeBackward(p, y, norms, gradOutput) : undefined,
    };
  }
}

/** Rows of x [N, dim] scaled to unit length on the host, as `F.normalize(x, dim=1)`. */
export function unitRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let sum = 0;
    for (let c = 0; c < dim; c++) sum += x[r * dim + c] ** 2;
    const scale = 1 / Math.max(Math.sqrt(sum), 1e-12);
    for (let c = 0; c < dim; c++) out[r * dim + c] = x[r * dim + c] * scale;
  }
  return out;
}
