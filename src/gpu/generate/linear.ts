/**
 * Generates the GPU family's linear-layer kernels (shaders/linear_*_tiled*.wgsl): the three
 * passes of y = x·Wᵀ + b as GEMMs C [m, n] = Σ_k A·B on tile.ts's micro-kernels, 64 × 64
 * tiles (`_tiled`) and 128 × 128 ones (`_tiled128`), with any m, n and k (loads outside the
 * matrices read zeros, stores outside are skipped).
 *
 * @module
 */
import {
  accumulators,
  blockCells,
  cell,
  enable,
  f16Note,
  generatedBy,
  halves,
  indent,
  lanes,
  ownRow,
  range,
  rowStride,
  sliceLoop,
  tile128,
  tile64,
  tileDeclarations,
  type TileShape,
  wgsl,
} from "./tile.ts";
import type { Precision } from "../kernel.ts";

/**
 * How an operand's elements lie in memory: `"k"` with k along a row (element (line, k) at
 * line·k_total + k, as x and W of y = x·Wᵀ), `"lines"` with the lines along a row (element
 * (k, line) at k·lines + line, as W of gx = gy·W).
 */
type Layout = "k" | "lines";

interface Operand {
  /** The binding's name. */
  readonly name: string;
  readonly layout: Layout;
  /** The Params member that counts its lines: m for A, n for B. */
  readonly lines: "m" | "n";
}

/** The bounds-checked element reader of an operand: zero outside the matrix and the split. */
function reader({ name, layout, lines }: Operand, precision: Precision): string {
  const offset = layout === "k" ? "line * params.k + kq" : `kq * params.${lines} + line`;
  const { scalar, zero } = wgsl[precision];
  return `fn ${name}_at(line: u32, kq: u32, k_end: u32) -> ${scalar} {
  let ok = line < params.${lines} && kq < k_end;
  return select(${zero}, ${name}[select(0u, ${offset}, ok)], ok);
}`;
}

/**
 * The operand's part of a slice: each invocation reads one vec4 of 4 consecutive lines
 * (from `first` + 4·group) at one k (`kk` into the slice) into `next`, and stages it at that
 * k's row of `tile`. Consecutive invocations read consecutive addresses: along k for layout
 * "k", along the lines for "lines".
 */
function operandSlice(
  operand: Operand,
  next: string,
  tile: string,
  first: string,
  precision: Precision,
  t: TileShape,
) {
  const groups = t.side / 4;
  const [kk, group] = operand.layout === "k"
    ? [`li % ${t.depth}u`, `li / ${t.depth}u`]
    : [`li / ${groups}u`, `li % ${groups}u`];
  const at = (j: number) => `${operand.name}_at(${first} + ${group} * 4u + ${j}u, kq, k_end)`;
  return {
    fetch: (k: string) => [
      `{`,
      `  let kq = ${k} + ${kk};`,
      `  ${next} = ${wgsl[precision].vec4}(${range(4).map(at).join(", ")});`,
      `}`,
    ],
    stage: `${tile}[${kk} * ${rowStride(t)}u + ${group}] = ${next};`,
  };
}

interface Gemm {
  /** The shader file's name with 64 × 64 tiles, without extension. */
  readonly name: string;
  /** The comment heading the file with tiles `t`: what it computes, in its callers' terms. */
  readonly header: (t: TileShape) => string[];
  readonly a: Operand;
  readonly b: Operand;
  /** Bindings after A and B (from binding 3), as WGSL declarations; `scalar`: A's and B's type. */
  readonly outputs: (scalar: string) => string[];
  /**
   * Extra statements after each slice's products (the bias sums, in `bias_sum` or, with two
   * halves, bias_sum0 and bias_sum1); `widen` makes a vec4 f32.
   */
  readonly perSlice?: (t: TileShape, widen: (v: string) => string) => string[];
  /**
   * Statements that store accumulator `acc` for row `row` and columns `col` .. + 3;
   * `narrow` converts an f32 value to A's and B's type.
   */
  readonly store: (acc: string, col: string, narrow: (v: string) => string) => string[];
  /** Extra statements after the stores. */
  readonly after?: (t: TileShape) => string[];
}

/** The name of a GEMM's kernel, and of its shader file without extension. */
function kernelName(spec: Gemm, precision: Precision, t: TileShape): string {
  const tiled = t.side === 64 ? spec.name : `${spec.name}${t.side}`;
  return precision === "f32" ? tiled : `${tiled}_${precision}`;
}

/** The variable that holds the bias sums of half `h` of the tile's rows. */
function biasSum(t: TileShape, h: number): string {
  return halves(t) === 1 ? "bias_sum" : `bias_sum${h}`;
}

/** The variable that holds the first column of half `j` of the invocation's columns. */
function column(t: TileShape, j: number): string {
  return halves(t) === 1 ? "col" : `col${j}`;
}

function gemm(spec: Gemm, precision: Precision, t: TileShape): string {
  const a = operandSlice(spec.a, "a_next", "a_tile", "m0", precision, t);
  const b = operandSlice(spec.b, "b_next", "b_tile", "n0", precision, t);
  const { scalar } = wgsl[precision];
  const f16 = precision === "f16";
  const widen = (v: string) => f16 ? `vec4f(${v})` : v;
  const narrow = (v: string) => f16 ? `f16(${v})` : v;
  return [
    generatedBy("linear.ts"),
    ...spec.header(t).map((l) => `// ${l}`),
    ...(f16 ? f16Note(t) : []),
    ...enable(precision),
    "struct Params { m: u32, n: u32, k: u32, k_per_split: u32, accumulate: u32 }",
    "",
    "@group(0) @binding(0) var<uniform> params: Params;",
    `@group(0) @binding(1) var<storage, read> ${spec.a.name}: array<${scalar}>;`,
    `@group(0) @binding(2) var<storage, read> ${spec.b.name}: array<${scalar}>;`,
    ...spec.outputs(scalar).map((o, i) => `@group(0) @binding(${i + 3}) ${o}`),
    "",
    ...tileDeclarations("lines of each operand", precision, t),
    "",
    reader(spec.a, precision),
    "",
    reader(spec.b, precision),
    "",
    "@compute @workgroup_size(256)",
    "fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u) {",
    `  let n0 = wid.x * ${t.side}u;`,
    `  let m0 = wid.y * ${t.side}u;`,
    "  let k_begin = wid.z * params.k_per_split;",
    "  let k_end = min(params.k, k_begin + params.k_per_split);",
    ...(halves(t) === 1
      ? ["  // This invocation computes rows m0 + 4·ty .. + 3 by columns n0 + 4·tx .. + 3."]
      : [
        "  // This invocation computes rows m0 + 4·ty .. + 3 and m0 + 64 + 4·ty .. + 3 by columns",
        "  // n0 + 4·tx .. + 3 and n0 + 64 + 4·tx .. + 3.",
      ]),
    ...indent(accumulators(t), "  "),
    ...(spec.perSlice ? range(halves(t)).map((h) => `  var ${biasSum(t, h)} = vec4f();`) : []),
    ...indent(
      sliceLoop(
        {
          counter: "k0",
          begin: "k_begin",
          end: "k_end",
          fetch: (k) => [...a.fetch(k), ...b.fetch(k)],
          stage: [a.stage, b.stage],
          perSlice: spec.perSlice?.(t, widen),
        },
        precision,
        t,
      ),
      "  ",
    ),
    ...range(halves(t)).map((j) =>
      `  let ${column(t, j)} = n0 + ${j === 0 ? "" : "64u + "}4u * tx;`
    ),
    ...blockCells(t).flatMap(([i, j]) => [
      `  {`,
      `    let row = m0 + ${ownRow(i)};`,
      ...indent(spec.store(`acc${cell(t, i, j)}`, column(t, j), narrow), "    "),
      `  }`,
    ]),
    ...indent(spec.after?.(t) ?? [], "  "),
    "}",
    "",
  ].join("\n");
}

/** Stores lane j of accumulator `acc` through `target` at columns `col` + j inside C. */
function storeColumns(
  acc: string,
  col: string,
  target: (j: number, value: string) => string,
): string[] {
  return [
    "if (row < params.m) {",
    ...range(4).map((j) =>
      `  if (${col} + ${j}u < params.n) { ${target(j, `${acc}.${lanes[j]}`)}; }`
    ),
    "}",
  ];
}

/** How a header names the tiling of tiles `t`, and a grid's blocks: (n / side, m / side). */
function tiling(t: TileShape): { name: string; grid: string } {
  const name = t.side === 64 ? "linear_forward_tiled" : `linear_forward_tiled${t.side}`;
  return { name, grid: `ceil(n / ${t.side}), ceil(m / ${t.side})` };
}

const forward: Gemm = {
  name: "linear_forward_tiled",
  header: (t) => [
    "y = x·Wᵀ + b for x [m, k] and W [n, k] (PyTorch's layout), y [m, n], for GPUs: a GEMM",
    ...(t.side === 64
      ? [
        "tiled in workgroup memory, 64 × 64 outputs per workgroup of 256 invocations, each a 4 × 4",
        "block in four vec4 accumulators. Any m, n, k. Params: m, n, k, k_per_split = k, and an",
      ]
      : [
        "tiled in workgroup memory, 128 × 128 outputs per workgroup of 256 invocations, each an",
        "8 × 8 block (rows 4·ty .. + 3 and 64 + 4·ty .. + 3 of the tile, the columns likewise) in",
        "16 vec4 accumulators, k staged 8 values at a time (a 64 × 64 tiling with slices of 16 is",
        "linear_forward_tiled). Any m, n, k. Params: m, n, k, k_per_split = k, and an",
      ]),
    `unused member. Grid: (${tiling(t).grid}).`,
  ],
  a: { name: "x", layout: "k", lines: "m" },
  b: { name: "w", layout: "k", lines: "n" },
  outputs: (scalar) => [
    "var<storage, read> bias: array<f32>;",
    `var<storage, read_write> y: array<${scalar}>;`,
  ],
  store: (acc, col, narrow) =>
    storeColumns(
      acc,
      col,
      (j, value) =>
        `y[row * params.n + ${col} + ${j}u] = ${narrow(`${value} + bias[${col} + ${j}u]`)}`,
    ),
};

const backwardInput: Gemm = {
  name: "linear_backward_input_tiled",
  header: (t) => [
    "gx = gy·W for gy [m, k] and W [k, n] (the layer's weight [out, in]), gx [m, n], for GPUs:",
    `${tiling(t).name}'s tiling with W read along its rows. Any m, n, k. Params: m, n, k,`,
    `k_per_split = k, and an unused member. Grid: (${tiling(t).grid}).`,
  ],
  a: { name: "gy", layout: "k", lines: "m" },
  b: { name: "w", layout: "lines", lines: "n" },
  outputs: (scalar) => [`var<storage, read_write> gx: array<${scalar}>;`],
  store: (acc, col, narrow) =>
    storeColumns(acc, col, (j, value) => `gx[row * params.n + ${col} + ${j}u] = ${narrow(value)}`),
};

const backwardWeight: Gemm = {
  name: "linear_backward_weight_tiled",
  header: (t) => [
    "gW (+)= gyᵀ·x and gb (+)= Σ_rows gy for gy [k, m] and x [k, n] (k: the batch), gW [m, n]",
    `in PyTorch's weight layout, for GPUs: ${tiling(t).name}'s tiling over the batch rows of`,
    "one split (workgroup z: rows z·k_per_split ..). The workgroups of the first column block",
    "also sum gy for the bias from the slices they stage. With accumulate = 1 (one split) the",
    "sums are added to the gradients; with 0 split z writes its own slice of out_w [splits,",
    "m·n] and out_b [splits, m], and linear_backward_weight_reduce adds them up. Any m, n, k.",
    `Params: m, n, k, k_per_split, accumulate. Grid: (${tiling(t).grid}, splits).`,
  ],
  a: { name: "gy", layout: "lines", lines: "m" },
  b: { name: "x", layout: "lines", lines: "n" },
  // The gradients of the (f32) parameters are f32 at every precision.
  outputs: () => [
    "var<storage, read_write> out_w: array<f32>;",
    "var<storage, read_write> out_b: array<f32>;",
  ],
  perSlice: (t, widen) => [
    "if (wid.x == 0u) {",
    ...range(t.depth).flatMap((kk) =>
      range(halves(t)).map((h) =>
        `  ${biasSum(t, h)} += ${widen(`a_tile[${kk * rowStride(t) + 16 * h}u + ty]`)};`
      )
    ),
    "}",
  ],
  store: (acc, col) => [
    `let o = select(wid.z * params.m * params.n, 0u, params.accumulate == 1u) + row * params.n;`,
    ...storeColumns(acc, col, (j, value) => {
      const at = `out_w[o + ${col} + ${j}u]`;
      return `${at} = select(0.0, ${at}, params.accumulate == 1u) + ${value}`;
    }),
  ],
  // Row i of the invocation is row o + offset of the bias.
  after: (t) => [
    "if (wid.x == 0u && tx == 0u) {",
    "  let o = select(wid.z * params.m, 0u, params.accumulate == 1u) + m0 + 4u * ty;",
    ...range(4 * halves(t)).map((i) => {
      const offset = 64 * Math.floor(i / 4) + (i % 4);
      const sum = `${biasSum(t, Math.floor(i / 4))}.${lanes[i % 4]}`;
      return `  if (m0 + ${
        ownRow(i)
      } < params.m) { out_b[o + ${offset}u] = select(0.0, out_b[o + ${offset}u], params.accumulate == 1u) + ${sum}; }`;
    }),
    "}",
  ],
};

/** The generated shaders, by file name in shaders/: each pass with both tiles, in f32 and f16. */
export function linearShaders(): Map<string, string> {
  const precisions: Precision[] = ["f32", "f16"];
  return new Map(
    [tile64, tile128].flatMap((t) =>
      [forward, backwardInput, backwardWeight].flatMap((g) =>
        precisions.map((p) => [`${kernelName(g, p, t)}.wgsl`, gemm(g, p, t)] as const)
      )
    ),
  );
}
