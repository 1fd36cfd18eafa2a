import type { Program } from "../gpu/gpu.ts";
import { embeddingBackwardKernel, embeddingForwardKernel } from "../gpu/kernels/text.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { normal } from "./init.ts";
import {
  type Entry,
  type Forward,
  type Initializer,
  type Layer,
  Parameter,
  type ParameterKind,
} from "./module.ts";

/**
 * An embedding table [V, D] as PyTorch's `nn.Embedding` (its `weight`, initialised normal
 * with std 0.02 as BERT's and CLIP's): ids [...] → rows [..., D]. Its table may also serve
 * as the weight of an output layer (BERT's tied decoder), whose gradient adds to the
 * lookups'.
 */
export class Embedding implements Layer {
  readonly weight: Parameter;

  constructor(
    readonly count: number,
    readonly dim: number,
    kind: ParameterKind = "weight",
    init: Initializer = normal(0.02),
  ) {
    this.weight = new Parameter([count, dim], kind, init);
  }

  entries(): Entry[] {
    return [["weight", this.weight]];
  }

  /**
   * Records the rows of `ids` (u32, any shape); returns [...ids.shape, D] and how to record
   * the backward pass, which adds the table's gradient (ids have none).
   */
  forward(program: Program, ids: Tensor): Forward {
    const output = embeddingLookup(program, this.weight.value, ids);
    return {
      output,
      backward: (p, gradOutput) => {
        embeddingBackward(p, gradOutput, ids, this.weight.grad);
        return undefined;
      },
    };
  }
}

function checkIds(ids: Tensor): void {
  if (ids.dtype !== "u32") throw new Error(`Embedding ids must be u32, got ${ids.dtype}`);
}

/** Records y[p] = table[ids[p]] for a table [V, D]; an id past the table gives NaN rows. */
export function embeddingLookup(program: Program, table: Tensor, ids: Tensor): Tensor {
  checkIds(ids);
  const [vocab, d] = table.shape;
  const y = program.temp([...ids.shape, d], "embeddings");
  program.dispatch(embeddingForwardKernel, [table, ids, y], Math.ceil(y.size / 256), [
    y.size,
    d,
    vocab,
  ]);
  return y;
}

/** Records gtable[v] += Σ_{p: ids[p] = v} gy[p] (parameter gradients accumulate). */
export function embeddingBackward(
  program: Program,
  gradY: Tensor,
  ids: Tensor,
  gradTable: Tensor,
): void {
  checkIds(ids);
  const [vocab, d] = gradTable.shape;
  if (gradY.size !== ids.size * d) {
    throw new Error(`Embedding gradient [${gradY.shape}] for ids [${ids.shape}], width ${d}`);
  }
  const chunks = Math.ceil(d / 8);
  program.dispatch(
    embeddingBackwardKernel,
    [gradY, ids, gradTable],
    Math.ceil((vocab * chunks) / 64),
    [vocab, d, ids.size, chunks],
  );
}
