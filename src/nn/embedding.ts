import type { Program } from "../gpu/gpu.ts";
import {
  embeddingBackwardRowsKernel,
  embeddingBackwardSumKernel,
  embeddingForwardKernel,
} from "../gpu/kernels/text.ts";
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

/**
 * Records gtable[v] += Σ_{p: ids[p] = v} gy[p] (parameter gradients accumulate). Only the
 * rows the ids use are summed, each over every position: a batch's few thousand ids use a
 * small part of a WordPiece table (30,522 rows), and scanning the ids for every row of it
 * cost more than the rest of a small text encoder's step. There is one path for every shape:
 * listing the rows costs a clear and one invocation per id, a small fraction of the sum even
 * when every row is used (a byte table), so nothing is saved by skipping it.
 */
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
  const flags = program.temp([vocab + 1], "embedding rows used and their count", "u32");
  const listed = Math.min(vocab, ids.size);
  const rows = program.temp([listed], "embedding rows used", "u32");
  // Cleared in every run of the program: a row listed by the last step may be unused now.
  program.clear(flags);
  program.dispatch(embeddingBackwardRowsKernel, [ids, flags, rows], Math.ceil(ids.size / 64), [
    vocab,
    ids.size,
  ]);
  const chunks = Math.ceil(d / 8);
  program.dispatch(
    embeddingBackwardSumKernel,
    [gradY, ids, flags, rows, gradTable],
    Math.ceil((listed * chunks) / 64),
    [vocab, d, ids.size, chunks],
  );
}
