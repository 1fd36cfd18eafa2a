/**
 * Generates the GPU family's linear-layer kernels (shaders/linear_*_tiled.wgsl): the three
 * passes of y = x·Wᵀ + b as GEMMs C [m, n] = Σ_k A·B on tile.ts's micro-kernel, with any m, n
 * and k (loads outside the matrices read zeros, stores outside are skipped).
 *
 * @module
 */
import {
  accumulators,
  enable,
  f16Note,
  generatedBy,
  indent,
  lanes,
  range,
  rowStride,
  sliceLoop,
  tileDeclarations,
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
) {
  const [kk, group] = operand.layout === "k" ? ["li % 16u", "li / 16u"] : ["li / 16u", "li % 16u"];
  const at = (j: number) => `${operand.name}_at(${first} + ${group} * 4u + ${j}u, kq, k_end)`;
  return {
    fetch: (k: string) => [
      `{`,
      `  let kq = ${k} + ${kk};`,
      `  ${next} = ${wgsl[precision].vec4}(${range(4).map(at).join(", ")});`,
      `}`,
    ],
    stage: `${tile}[${kk} * ${rowStride}u + ${group}] = ${next};`,
  };
}

interface Gemm {
  /** The shader file's name, without extension. */
  readonly name: string;
  /** The comment heading the file: what it computes, in its callers' terms. */
  readonly header: string[];
  readonly a: Operand;
  readonly b: Operand;
  /** Bindings after A and B (from binding 3), as WGSL declarations; `scalar`: A's and B's type. */
  readonly outputs: (scalar: string) => string[];
  /** Extra statements after each slice's products (the bias sums); `widen` makes a vec4 f32. */
  readonly perSlice?: (widen: (v: string) => string) => string[];
  /**
   * Statements that store accumulator `acc{i}` for row `row` and columns col .. col + 3;
   * `narrow` converts an f32 value to A's and B's type.
   */
  readonly store: (i: number, narrow: (v: string) => string) => string[];
  /** Extra statements after the stores. */
  readonly after?: string[];
}

/** The file name (without extension) of a GEMM's shader at a precision. */
function fileName(spec: Gemm, precision: Precision): string {
  return precision === "f32" ? spec.name : `${spec.name}_${precision}`;
}

function gemm(spec: Gemm, precision: Precision): string {
  const a = operandSlice(spec.a, "a_next", "a_tile", "m0", precision);
  const b = operandSlice(spec.b, "b_next", "b_tile", "n0", precision);
  const { scalar } = wgsl[precision];
  const f16 = precision === "f16";
  const widen = (v: string) => f16 ? `vec4f(${v})` : v;
  const narrow = (v: string) => f16 ? `f16(${v})` : v;
  return [
    generatedBy("linear.ts"),
    ...spec.header.map((l) => `// ${l}`),
    ...(f16 ? f16Note : []),
    ...enable(precision),
    "struct Params { m: u32, n: u32, k: u32, k_per_split: u32, accumulate: u32 }",
    "",
    "@group(0) @binding(0) var<uniform> params: Params;",
    `@group(0) @binding(1) var<storage, read> ${spec.a.name}: array<${scalar}>;`,
    `@group(0) @binding(2) var<storage, read> ${spec.b.name}: array<${scalar}>;`,
    ...spec.outputs(scalar).map((o, i) => `@group(0) @binding(${i + 3}) ${o}`),
    "",
    ...tileDeclarations("lines of each operand", precision),
    "",
    reader(spec.a, precision),
    "",
    reader(spec.b, precision),
    "",
    "@compute @workgroup_size(256)",
    "fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u) {",
    "  let n0 = wid.x * 64u;",
    "  let m0 = wid.y * 64u;",
    "  let k_begin = wid.z * params.k_per_split;",
    "  let k_end = min(params.k, k_begin + params.k_per_split);",
    "  // This invocation computes rows m0 + 4·ty .. + 3 by columns n0 + 4·tx .. + 3.",
    ...indent(accumulators(), "  "),
    ...(spec.perSlice ? ["  var bias_sum = vec4f();"] : []),
    ...indent(
      sliceLoop({
        counter: "k0",
        begin: "k_begin",
        end: "k_end",
        fetch: (k) => [...a.fetch(k), ...b.fetch(k)],
        stage: [a.stage, b.stage],
        perSlice: spec.perSlice?.(widen),
      }, precision),
      "  ",
    ),
    "  let col = n0 + 4u * tx;",
    ...range(4).flatMap((i) => [
      `  {`,
      `    let row = m0 + 4u * ty + ${i}u;`,
      ...indent(spec.store(i, narrow), "    "),
      `  }`,
    ]),
    ...indent(spec.after ?? [], "  "),
    "}",
    "",
  ].join("\n");
}

/** Stores lane j of accumulator `acc{i}` through `target` at columns col + j inside C. */
function storeColumns(i: number, target: (j: number, value: string) => string): string[] {
  return [
    "if (row < params.m) {",
    ...range(4).map((j) =>
      `  if (col + ${j}u < params.n) { ${target(j, `acc${i}.${lanes[j]}`)}; }`
    ),
    "}",
  ];
}

const forward: Gemm = {
  name: "linear_forward_tiled",
  header: [
    "y = x·Wᵀ + b for x [m, k] and W [n, k] (PyTorch's layout), y [m, n], for GPUs: a GEMM",
    "tiled in workgroup memory, 64 × 64 outputs per workgroup of 256 invocations, each a 4 × 4",
    "block in four vec4 accumulators. Any m, n, k. Params: m, n, k, k_per_split = k, and an",
    "unused member. Grid: (ceil(n / 64), ceil(m / 64)).",
  ],
  a: { name: "x", layout: "k", lines: "m" },
  b: { name: "w", layout: "k", lines: "n" },
  outputs: (scalar) => [
    "var<storage, read> bias: array<f32>;",
    `var<storage, read_write> y: array<${scalar}>;`,
  ],
  store: (i, narrow) =>
    storeColumns(
      i,
      (j, value) => `y[row * params.n + col + ${j}u] = ${narrow(`${value} + bias[col + ${j}u]`)}`,
    ),
};

const backwardInput: Gemm = {
  name: "linear_backward_input_tiled",
  header: [
    "gx = gy·W for gy [m, k] and W [k, n] (the layer's weight [out, in]), gx [m, n], for GPUs:",
    "linear_forward_tiled's tiling with W read along its rows. Any m, n, k. Params: m, n, k,",
    "k_per_split = k, and an unused member. Grid: (ceil(n / 64), ceil(m / 64)).",
  ],
  a: { name: "gy", layout: "k", lines: "m" },
  b: { name: "w", layout: "lines", lines: "n" },
  outputs: (scalar) => [`var<storage, read_write> gx: array<${scalar}>;`],
  store: (i, narrow) =>
    storeColumns(i, (j, value) => `gx[row * params.n + col + ${j}u] = ${narrow(value)}`),
};

const backwardWeight: Gemm = {
  name: "linear_backward_weight_tiled",
  header: [
    "gW (+)= gyᵀ·x and gb (+)= Σ_rows gy for gy [k, m] and x [k, n] (k: the batch), gW [m, n]",
    "in PyTorch's weight layout, for GPUs: linear_forward_tiled's tiling over the batch rows of",
    "one split (workgroup z: rows z·k_per_split ..). The workgroups of the first column block",
    "also sum gy for the bias from the slices they stage. With accumulate = 1 (one split) the",
    "sums are added to the gradients; with 0 split z writes its own slice of out_w [splits,",
    "m·n] and out_b [splits, m], and linear_backward_weight_reduce adds them up. Any m, n, k.",
    "Params: m, n, k, k_per_split, accumulate. Grid: (ceil(n / 64), ceil(m / 64), splits).",
  ],
  a: { name: "gy", layout: "lines", lines: "m" },
  b: { name: "x", layout: "lines", lines: "n" },
  // The gradients of the (f32) parameters are f32 at every precision.
  outputs: () => [
    "var<storage, read_write> out_w: array<f32>;",
    "var<storage, read_write> out_b: array<f32>;",
  ],
  perSlice: (widen) => [
    "if (wid.x == 0u) {",
    ...range(16).map((kk) => `  bias_sum += ${widen(`a_tile[${kk * rowStride}u + ty]`)};`),
    "}",
  ],
  store: (i) => [
    `let o = select(wid.z * params.m * params.n, 0u, params.accumulate == 1u) + row * params.n;`,
    ...storeColumns(i, (j, value) => {
      const at = `out_w[o + col + ${j}u]`;
      return `${at} = select(0.0, ${at}, params.accumulate == 1u) + ${value}`;
    }),
  ],
  after: [
    "if (wid.x == 0u && tx == 0u) {",
    "  let o = select(wid.z * params.m, 0u, params.accumulate == 1u) + m0 + 4u * ty;",
    ...range(4).map((i) =>
      `  if (m0 + 4u * ty + ${i}u < params.m) { out_b[o + ${i}u] = select(0.0, out_b[o + ${i}u], params.accumulate == 1u) + bias_sum.${
        lanes[i]
      }; }`
    ),
    "}",
  ],
};

/** The generated shaders, by file name in shaders/: each pass in f32 and in f16. */
export function linearShaders(): Map<string, string> {
  const precisions: Precision[] = ["f32", "f16"];
  return new Map(
    [forward, backwardInput, backwardWeight].flatMap((g) =>
      precisions.map((p) => [`${fileName(g, p)}.wgsl`, gemm(g, p)] as const)
    ),
  );
}
