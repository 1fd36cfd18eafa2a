/**
 * The output tile of the tiled (GPU) GEMMs that linear layers and convolutions record:
 * 64 × 64 outputs per workgroup, or 128 × 128 (see src/gpu/generate/tile.ts).
 *
 * @module
 */
import type { TileSide } from "../gpu/kernel.ts";

// A 128 × 128 workgroup does the work of four 64 × 64 ones and reads half as many bytes of
// workgroup memory per multiply-add, but its grid is four times coarser, and a GPU whose
// multiprocessors are not all busy loses more than the tile saves. The 128 × 128 tiles are
// chosen where they alone give at least 256 workgroups, about two per multiprocessor of a large
// GPU (an H200 has 132), and where both sides of the output are at least 128 lines (else part
// of every tile is empty, a 64-channel convolution's half); smaller grids keep the 64 × 64
// tiles, which split their sums to fill the GPU.
const minWorkgroups128 = 256;

/**
 * The tile of a GEMM with `rows` × `cols` outputs: `forced` if given (tests and benchmarks
 * compare the tiles), else by the rule above.
 */
export function gemmTile(rows: number, cols: number, forced?: TileSide): TileSide {
  if (forced !== undefined) {
    if (forced !== 64 && forced !== 128) {
      throw new Error(`GEMM tile must be 64 or 128, got ${forced}`);
    }
    return forced;
  }
  const workgroups = Math.ceil(rows / 128) * Math.ceil(cols / 128);
  return rows >= 128 && cols >= 128 && workgroups >= minWorkgroups128 ? 128 : 64;
}

/**
 * 64 × 64 tiles of work in one tile of `side`: 1, or 4. Passes that split their sums to fill
 * a GPU count their tiles in 64 × 64 ones, so that a grid of 128 × 128 tiles aims for the same
 * work in flight (a quarter as many workgroups).
 */
export function tileArea(side: TileSide): number {
  return (side / 64) ** 2;
}
