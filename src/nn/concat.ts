import type { Program } from "../gpu/gpu.ts";
import { copyRowsKernel } from "../gpu/kernels/multicrop.ts";
import type { Tensor } from "../gpu/tensor.ts";

function copy(
  program: Program,
  src: Tensor,
  srcOffset: number,
  dst: Tensor,
  dstOffset: number,
  n: number,
) {
  program.dispatch(copyRowsKernel, [src, dst], Math.ceil(n / 256), [n, srcOffset, dstOffset]);
}

/**
 * Records [a; b; …]: tensors of the same trailing shape stacked along the first dimension,
 * copied into a new tensor (the global crops of a multi-crop batch, which share one forward
 * pass and so one batch-norm batch; the features of every crop size, which share one head).
 * A single tensor is returned as it is.
 */
export function concatRows(program: Program, parts: readonly Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const rest = parts[0]?.shape.slice(1).join();
  if (parts.length === 0 || parts.some((p) => p.shape.slice(1).join() !== rest)) {
    throw new Error(`Cannot stack [${parts.map((p) => `[${p.shape}]`)}]`);
  }
  const rows = parts.reduce((sum, p) => sum + p.shape[0], 0);
  const out = program.temp([rows, ...parts[0].shape.slice(1)], "stacked rows");
  let offset = 0;
  for (const part of parts) {
    copy(program, part, 0, out, offset, part.size);
    offset += part.size;
  }
  return out;
}

/** Records a copy of the rows [begin, begin + count) of x (along its first dimension). */
export function sliceRows(program: Program, x: Tensor, begin: number, count: number): Tensor {
  const [rows, ...rest] = x.shape;
  if (!(begin >= 0 && count >= 1 && begin + count <= rows)) {
    throw new Error(`Cannot take rows [${begin}, ${begin + count}) of [${x.shape}]`);
  }
  if (count === rows) return x;
  const out = program.temp([count, ...rest], "rows taken out");
  copy(program, x, begin * (x.size / rows), out, 0, out.size);
  return out;
}
