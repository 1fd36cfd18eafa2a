/**
 * The micro-kernels the tiled (GPU) kernels share, written out as straight-line WGSL: every
 * loop over a compile-time count (the steps of a staged slice, the 4 lanes of a loader, the
 * outputs of a store) is unrolled by the generators, and the accumulated outputs are named
 * vec4s. naga lowers each WGSL loop to `loop {}` with an added bound counter, which can keep a
 * driver from unrolling it, and a private array indexed by a loop counter then lives in local
 * memory; code with no such loop leaves the driver nothing to decide.
 *
 * The tilings (a {@link TileShape}): a workgroup of 256 invocations (16 × 16) computes a
 * 64 × 64 or a 128 × 128 block of the output. With 64 × 64 each invocation computes a 4 × 4
 * block (rows 4·ty .., columns 4·tx ..) in four vec4s, and k is staged 16 values at a time.
 * With 128 × 128 each invocation computes an 8 × 8 block in 16 vec4s, split in two along each
 * side (rows 4·ty .. and 64 + 4·ty .., the columns likewise), so that the 16 invocations of a
 * row or column of the workgroup read 16 consecutive vec4s of workgroup memory, as with 64;
 * k is staged 8 values at a time. Either way a staged slice of an operand is 1,024 values,
 * one vec4 per invocation, stored as [k][lines] in vec4s. An 8 × 8 block reads half as many
 * bytes of workgroup memory per multiply-add as a 4 × 4 one (1 against 2), the usual way to
 * bring a GEMM near a GPU's arithmetic peak; it needs four times the accumulators, and a
 * workgroup four times the work. A staged k-row is one vec4 longer than it holds, so that
 * loaders that store down a column (one k-row per invocation of a group) fall in different
 * banks.
 *
 * @module
 */
import type { Precision, TileSide } from "../kernel.ts";

/** A workgroup's output tile and how deep its staged slices are. */
export interface TileShape {
  /** Output lines along each side of the tile: 64, or 128. */
  readonly side: TileSide;
  /** Values of k per staged slice: 1,024 / side, one vec4 per invocation and operand. */
  readonly depth: number;
}

/** 64 × 64 outputs, 4 × 4 per invocation, slices of 16. */
export const tile64: TileShape = { side: 64, depth: 16 };
/** 128 × 128 outputs, 8 × 8 per invocation (in two halves each way), slices of 8. */
export const tile128: TileShape = { side: 128, depth: 8 };

/** vec4s per staged k-row: side / 4 hold the tile's lines, one more spreads the banks. */
export function rowStride(t: TileShape): number {
  return t.side / 4 + 1;
}

/** The 64-line halves of the tile along each side that an invocation has a 4-line part in. */
export function halves(t: TileShape): number {
  return t.side / 64;
}

/** Rows of the tile an invocation computes: 4 per half. */
function rowsPerInvocation(t: TileShape): number {
  return 4 * halves(t);
}

/**
 * The offset in the tile of the invocation's row `i` (its column `i` with `"tx"`): in half
 * ⌊i / 4⌋, lane i mod 4 of the invocation's 4 lines there.
 */
export function ownRow(i: number, ty = "ty"): string {
  const half = Math.floor(i / 4) * 64;
  return half === 0 ? `4u * ${ty} + ${i % 4}u` : `${half}u + 4u * ${ty} + ${i % 4}u`;
}

/** The number of the invocation's accumulator of its row `i`, column half `j`: 0 … 15. */
export function cell(t: TileShape, i: number, j: number): number {
  return i * halves(t) + j;
}

/** Every (row, column half) of an invocation's block, in accumulator order. */
export function blockCells(t: TileShape): [number, number][] {
  return range(rowsPerInvocation(t)).flatMap((i) =>
    range(halves(t)).map((j) => [i, j] as [number, number])
  );
}

/**
 * WGSL spellings of a precision's scalar, vec4 and zero: the type the operands are stored and
 * staged in. With f16 the products of one staged slice are summed in f16 and each slice's sum
 * is added to f32 accumulators, so that rounding grows with the slice, not with the whole of k.
 */
export const wgsl: Readonly<Record<Precision, { scalar: string; vec4: string; zero: string }>> = {
  f32: { scalar: "f32", vec4: "vec4f", zero: "0.0" },
  f16: { scalar: "f16", vec4: "vec4h", zero: "0.0h" },
};

/** What an f16 variant says of itself after its f32 twin's description. */
export function f16Note(t: TileShape): string[] {
  const note = [
    `// The f16 variant: operands stored and staged as f16, the ${t.depth} products of each staged slice`,
    "// summed in f16, the slices' sums in f32.",
  ];
  if (t.depth === tile64.depth) return note;
  return [
    ...note,
    `// Slices of ${t.depth} values of k make shorter f16 sums than the 64 × 64 tiles' ${tile64.depth}`,
    "// (and twice as many f32 additions).",
  ];
}

/** The directive a shader of this precision starts with, if any. */
export function enable(precision: Precision): string[] {
  return precision === "f16" ? ["enable f16;", ""] : [];
}

/** The components of a vec4, by index. */
export const lanes = ["x", "y", "z", "w"] as const;

/** 0, 1, …, n − 1. */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Prefixes every line with `by`. */
export function indent(lines: readonly string[], by: string): string[] {
  return lines.map((l) => by + l);
}

/** The first line of a generated file, naming its generator. */
export function generatedBy(generator: string): string {
  return `// Generated by src/gpu/generate/${generator} (\`deno task shaders\`); edit that, not this.`;
}

/** The two staged operands: a_tile (the output's rows), b_tile (its columns). */
export function tileDeclarations(
  what: string,
  precision: Precision,
  t: TileShape,
): string[] {
  const stride = rowStride(t);
  const values = t.depth * stride;
  const kib = (values * 4 * (precision === "f16" ? 2 : 4) * 2) / 1024;
  const vec4 = wgsl[precision].vec4;
  return [
    `// ${t.depth} values of k by ${t.side} ${what}, as vec4s (rows of ${stride}): ${kib} KiB.`,
    `var<workgroup> a_tile: array<${vec4}, ${values}>;`,
    `var<workgroup> b_tile: array<${vec4}, ${values}>;`,
  ];
}

/**
 * The invocation's place in the tile and its accumulators: acc{i·halves + j} holds its row i
 * (see {@link ownRow}), columns of half j.
 */
export function accumulators(t: TileShape): string[] {
  return [
    "let tx = li % 16u;",
    "let ty = li / 16u;",
    ...blockCells(t).map(([i, j]) => `var acc${cell(t, i, j)} = vec4f();`),
  ];
}

/**
 * The unrolled products of one staged slice: `depth` steps of vec4 multiply-adds (4 per step
 * with 64 × 64 tiles, 16 with 128 × 128), into the accumulators (f32) or into the slice's f16
 * sums part{n}, then added to them (f16).
 */
export function products(precision: Precision, t: TileShape): string[] {
  const { vec4 } = wgsl[precision];
  const into = precision === "f16" ? "part" : "acc";
  const stride = rowStride(t);
  const one = halves(t) === 1;
  // The staged vec4s of each half: `a`, `b` alone, or a0, a1 and b0, b1.
  const staged = (operand: string, h: number) => one ? operand : `${operand}${h}`;
  const cells = blockCells(t);
  const steps = range(t.depth).flatMap((kk) => [
    `{`,
    ...range(halves(t)).map((h) =>
      `  let ${staged("a", h)} = a_tile[${kk * stride + 16 * h}u + ty];`
    ),
    ...range(halves(t)).map((h) =>
      `  let ${staged("b", h)} = b_tile[${kk * stride + 16 * h}u + tx];`
    ),
    ...cells.map(([i, j]) => {
      const n = cell(t, i, j);
      const a = `${staged("a", Math.floor(i / 4))}.${lanes[i % 4]}`;
      return `  ${into}${n} = fma(${vec4}(${a}), ${staged("b", j)}, ${into}${n});`;
    }),
    `}`,
  ]);
  if (precision === "f32") return steps;
  const numbers = cells.map(([i, j]) => cell(t, i, j));
  return [
    ...numbers.map((n) => `var part${n} = vec4h();`),
    ...steps,
    ...numbers.map((n) => `acc${n} += vec4f(part${n});`),
  ];
}

/** The parts of a kernel's loop over staged slices; see {@link sliceLoop}. */
export interface Slices {
  /** The loop's counter, its first value and its bound: slices start at counter, +depth, …. */
  readonly counter: string;
  readonly begin: string;
  readonly end: string;
  /**
   * Statements that read the slice starting at `first` from global memory into the
   * variables a_next and b_next (declared by sliceLoop), advancing any per-slice state.
   */
  readonly fetch: (first: string) => string[];
  /** Statements that store a_next and b_next into a_tile and b_tile. */
  readonly stage: string[];
  /** Statements after each slice's products, before the closing barrier. */
  readonly perSlice?: string[];
}

/**
 * The loop over staged slices, with register double buffering: each slice's global loads are
 * issued before the previous slice's products, so that their latency hides behind arithmetic
 * instead of stalling the workgroup between barriers. The fetch past the last slice reads
 * nothing (its loads are masked by the bounds).
 */
export function sliceLoop(s: Slices, precision: Precision, t: TileShape): string[] {
  const { vec4 } = wgsl[precision];
  return [
    `var a_next: ${vec4};`,
    `var b_next: ${vec4};`,
    ...s.fetch(s.begin),
    `for (var ${s.counter} = ${s.begin}; ${s.counter} < ${s.end}; ${s.counter} += ${t.depth}u) {`,
    ...indent(s.stage, "  "),
    "  workgroupBarrier();",
    ...indent(s.fetch(`${s.counter} + ${t.depth}u`), "  "),
    ...indent(products(precision, t), "  "),
    ...indent(s.perSlice ?? [], "  "),
    "  workgroupBarrier();",
    "}",
  ];
}
