/**
 * Generates the GPU family's convolution kernels (shaders/conv2d_*_tiled*.wgsl): implicit
 * GEMMs over k = (input channel, tap) on tile.ts's micro-kernels, the forward kernel (which
 * also computes the input gradient) and the weight gradient's, each with 64 × 64 tiles
 * (`_tiled`) and with 128 × 128 ones (`_tiled128`). Each loader's four lanes are
 * written out with their own named indices (no private arrays), so the only loop left is the
 * one over k (forward) or over the output pixels of a split (weight gradient).
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

/** A vec4 of the precision's type from its four lanes. */
const vec4Of = (precision: Precision, f: (j: number) => string) =>
  `${wgsl[precision].vec4}(${range(4).map(f).join(", ")})`;

// The Params members both kernels start with: the convolution's shape.
const geometry = [
  "batch: u32,",
  "in_channels: u32,",
  "in_h: u32,",
  "in_w: u32,",
  "out_channels: u32,",
  "out_h: u32,",
  "out_w: u32,",
  "kh: u32,",
  "kw: u32,",
  "stride: u32,",
  "pad_y: i32,",
  "pad_x: i32,",
];

/**
 * An index that starts at `first` and advances by `step` (a slice's depth) each slice, kept as
 * three mixed-radix digits (outer, middle < middleRadix, inner < innerRadix): its
 * declarations, and its advance, which takes adds and carries only. Integer division costs
 * tens of instructions on GPUs; the loaders would otherwise divide every slice.
 */
function counter(
  [outer, middle, inner]: readonly string[],
  middleRadix: string,
  innerRadix: string,
  first: string,
  step: number,
) {
  const both = `(${middleRadix} * ${innerRadix})`;
  const at = `(${first})`;
  return {
    declare: [
      `var ${outer} = ${at} / ${both};`,
      `var ${middle} = ${at} % ${both} / ${innerRadix};`,
      `var ${inner} = ${at} % ${innerRadix};`,
      `let ${outer}_step = ${step}u / ${both};`,
      `let ${middle}_step = ${step}u % ${both} / ${innerRadix};`,
      `let ${inner}_step = ${step}u % ${innerRadix};`,
    ],
    advance: [
      `${inner} += ${inner}_step;`,
      `let ${inner}_carry = ${inner} >= ${innerRadix};`,
      `${inner} = select(${inner}, ${inner} - ${innerRadix}, ${inner}_carry);`,
      `${middle} += ${middle}_step + u32(${inner}_carry);`,
      `let ${middle}_carry = ${middle} >= ${middleRadix};`,
      `${middle} = select(${middle}, ${middle} - ${middleRadix}, ${middle}_carry);`,
      `${outer} += ${outer}_step + u32(${middle}_carry);`,
    ],
  };
}

/** The tiling a forward kernel's header describes. */
function forwardTiling(t: TileShape): string[] {
  if (t.side === 64) {
    return [
      "// k = (input channel, tap), staged through workgroup memory 16 values of k at a time. A",
      "// workgroup computes a 64-channel × 64-pixel tile, each of its 256 invocations a 4 × 4 block.",
    ];
  }
  return [
    "// k = (input channel, tap), staged through workgroup memory 8 values of k at a time. A",
    "// workgroup computes a 128-channel × 128-pixel tile, each of its 256 invocations an 8 × 8",
    "// block (channels 4·ty .. + 3 and 64 + 4·ty .. + 3, pixels likewise by tx; conv2d_forward_tiled",
    "// is the 64 × 64 tiling).",
  ];
}

/**
 * The forward kernel for operands of `precision` with tiles `t`, storing its sums as
 * `stores`: f32 ones store f32; f16 ones store f16 outputs, or f32 partial sums when their sum
 * over k is split.
 */
function forward(precision: Precision, stores: Precision, t: TileShape): string {
  // k = k0 + li / groups as (input channel, kernel row, kernel column).
  const tap = counter(["ci", "ky", "kx"], "params.kh", "params.kw", "k_begin + k_row", t.depth);
  // Invocation li stages k-row li / groups, lines 4·(li % groups) .. + 3 of the tile.
  const groups = t.side / 4;
  const { scalar, zero } = wgsl[precision];
  const note = precision === "f32" ? [] : [
    ...f16Note(t),
    stores === "f16"
      ? "// It stores y in f16, and is used when the sum is not split."
      : "// It stores the f32 partial sums of a split sum, which conv2d_split_sum adds up.",
  ];
  return [
    generatedBy("conv2d.ts"),
    "// Convolution for GPUs: an implicit GEMM, y[co, pixel] = Σ_k w[k, co] · im2col(x)[k, pixel],",
    ...forwardTiling(t),
    "// Same parameters and output placement as conv2d_forward, so it also computes the input",
    "// gradient one stride phase at a time; it reads w itself, as conv2d_pack_weights does.",
    "// The sum over k may be split: split s sums k_per_split values of k from s·k_per_split",
    "// (a multiple of 16) and stores at s·split_stride onwards; conv2d_split_sum then adds the",
    "// splits up (0 and k_per_split ≥ k_total: one split, stored in place).",
    `// Grid: (x, padded / ${t.side} · splits, z) with x · z ≥ ceil(batch · out_h · out_w / ${t.side}): the`,
    "// pixel tiles, folded into x and z past 65,535 (large images); y numbers the channel blocks",
    "// of split 0, then of split 1, ….",
    ...note,
    ...enable(precision),
    "struct Params {",
    ...indent([
      ...geometry,
      "padded: u32,",
      "plane_h: u32,",
      "plane_w: u32,",
      "step_y: u32,",
      "offset_y: u32,",
      "step_x: u32,",
      "offset_x: u32,",
      "k_per_split: u32,",
      "split_stride: u32,",
      "// How w [Cout, Cin, k, k] is read (conv2d_pack_weights's parameters): value (r, u, v)",
      "// of column c at c·col_stride + r·row_stride + (y0 + u·dy)·ksize + x0 + v·dx.",
      "col_stride: u32,",
      "row_stride: u32,",
      "ksize: u32,",
      "y0: i32,",
      "dy: i32,",
      "x0: i32,",
      "dx: i32,",
    ], "  "),
    "}",
    "",
    "@group(0) @binding(0) var<uniform> params: Params;",
    `@group(0) @binding(1) var<storage, read> x: array<${scalar}>;`,
    `@group(0) @binding(2) var<storage, read> w: array<${scalar}>;`,
    `@group(0) @binding(3) var<storage, read_write> y: array<${stores}>;`,
    "",
    ...tileDeclarations(
      `output channels (weights) and by ${t.side} pixels (inputs)`,
      precision,
      t,
    ),
    "",
    "// Input value of channel ci at row iy, column ix of the image whose channel 0 starts at row",
    "// `base`, or 0 in the padding and for k past the end.",
    `fn x_at(base: u32, ci: u32, iy: i32, ix: i32, k_ok: bool) -> ${scalar} {`,
    "  let ok = k_ok && u32(iy) < params.in_h && u32(ix) < params.in_w;",
    "  let i = ((base + ci * params.in_h) + u32(iy)) * params.in_w + u32(ix);",
    `  return select(${zero}, x[select(0u, i, ok)], ok);`,
    "}",
    "",
    "// Weight of column (output channel) c at reduction channel ci, tap (ky, kx) of the taps",
    "// summed, or 0 past the last column and for k past the end.",
    `fn w_at(c: u32, ci: u32, ky: u32, kx: u32, k_ok: bool) -> ${scalar} {`,
    "  let ok = k_ok && c < params.out_channels;",
    "  let row = u32(params.y0 + i32(ky) * params.dy);",
    "  let column = u32(params.x0 + i32(kx) * params.dx);",
    "  let i = c * params.col_stride + ci * params.row_stride + row * params.ksize + column;",
    `  return select(${zero}, w[select(0u, i, ok)], ok);`,
    "}",
    "",
    "// Stores output channel co of output pixel p (flat over batch, rows, columns) of a split's",
    "// sum, if both exist.",
    "fn store(co: u32, p: u32, value: f32, split: u32) {",
    "  let pixels = params.out_h * params.out_w;",
    "  if (co >= params.out_channels || p >= params.batch * pixels) { return; }",
    "  let n = p / pixels;",
    "  let oy = p % pixels / params.out_w;",
    "  let ox = p % params.out_w;",
    "  let plane = params.plane_h * params.plane_w;",
    "  let row = oy * params.step_y + params.offset_y;",
    "  let column = ox * params.step_x + params.offset_x;",
    "  y[split * params.split_stride + (n * params.out_channels + co) * plane + row * params.plane_w +",
    `    column] = ${stores === "f16" ? "f16(value)" : "value"};`,
    "}",
    "",
    "@compute @workgroup_size(256)",
    "fn main(",
    "  @builtin(local_invocation_index) li: u32,",
    "  @builtin(workgroup_id) wid: vec3u,",
    "  @builtin(num_workgroups) nwg: vec3u,",
    ") {",
    `  let p0 = (wid.x + wid.z * nwg.x) * ${t.side}u;`,
    `  let blocks = params.padded / ${t.side}u;`,
    `  let co0 = wid.y % blocks * ${t.side}u;`,
    "  let split = wid.y / blocks;",
    "  let taps = params.kh * params.kw;",
    "  let k_total = params.in_channels * taps;",
    "  let pixels = params.out_h * params.out_w;",
    `  // This invocation stages row k0 + li / ${groups} of the weights (channels co0 + 4·(li % ${groups}) ..)`,
    `  // and of the inputs (pixels qj = p0 + 4·(li % ${groups}) + j, j = 0..3) of every slice; a pixel past`,
    "  // the end reads nothing (its window starts below the image).",
    "  let k_begin = split * params.k_per_split;",
    "  let k_end = min(k_total, k_begin + params.k_per_split);",
    `  let k_row = li / ${groups}u;`,
    ...indent(tap.declare, "  "),
    ...range(4).flatMap((j) => [
      `  let q${j} = p0 + li % ${groups}u * 4u + ${j}u;`,
      `  let base${j} = q${j} / pixels * params.in_channels * params.in_h;`,
      `  let iy${j} = select(-1 - i32(params.kh), i32(q${j} % pixels / params.out_w * params.stride) - params.pad_y, q${j} < params.batch * pixels);`,
      `  let ix${j} = i32(q${j} % params.out_w * params.stride) - params.pad_x;`,
    ]),
    ...(halves(t) === 1
      ? ["  // ...and computes channels co0 + 4·ty .. + 3 at pixels p0 + 4·tx .. + 3."]
      : [
        "  // ...and computes channels co0 + 4·ty .. + 3 and co0 + 64 + 4·ty .. + 3 at pixels",
        "  // p0 + 4·tx .. + 3 and p0 + 64 + 4·tx .. + 3.",
      ]),
    ...indent(accumulators(t), "  "),
    ...indent(
      sliceLoop(
        {
          counter: "k0",
          begin: "k_begin",
          end: "k_end",
          fetch: (first) => [
            "{",
            `  let k = ${first} + k_row;`,
            "  let k_ok = k < k_end;",
            `  a_next = ${
              vec4Of(precision, (j) => `w_at(co0 + li % ${groups}u * 4u + ${j}u, ci, ky, kx, k_ok)`)
            };`,
            `  b_next = ${
              vec4Of(
                precision,
                (j) => `x_at(base${j}, ci, iy${j} + i32(ky), ix${j} + i32(kx), k_ok)`,
              )
            };`,
            ...indent(tap.advance, "  "),
            "}",
          ],
          stage: [
            `a_tile[k_row * ${rowStride(t)}u + li % ${groups}u] = a_next;`,
            `b_tile[k_row * ${rowStride(t)}u + li % ${groups}u] = b_next;`,
          ],
        },
        precision,
        t,
      ),
      "  ",
    ),
    ...blockCells(t).flatMap(([i, h]) =>
      range(4).map((j) =>
        `  store(co0 + ${ownRow(i)}, p0 + ${ownRow(4 * h + j, "tx")}, acc${cell(t, i, h)}.${
          lanes[j]
        }, split);`
      )
    ),
    "}",
    "",
  ].join("\n");
}

/** The weight-gradient kernel for x and gy of `precision`; the gradient's sums are f32. */
/** The tiling a weight-gradient kernel's header describes. */
function backwardWeightTiling(t: TileShape): string[] {
  if (t.side === 64) {
    return [
      "// memory 16 pixels at a time. A workgroup computes a 64-channel × 64-k tile, each of its 256",
      "// invocations a 4 × 4 block. It stores the sums of its split as out[split] in the layout of",
      "// the gradient, and conv2d_reduce adds the splits into the gradient.",
    ];
  }
  return [
    "// memory 8 pixels at a time. A workgroup computes a 128-channel × 128-k tile, each of its 256",
    "// invocations an 8 × 8 block (channels 4·ty .. + 3 and 64 + 4·ty .. + 3, k likewise by tx;",
    "// conv2d_backward_weight_tiled is the 64 × 64 tiling). It stores the sums of its split as",
    "// out[split] in the layout of the gradient, and conv2d_reduce adds the splits into it.",
  ];
}

/**
 * The weight-gradient kernel for x and gy of `precision` with tiles `t`; the gradient's sums
 * are f32.
 */
function backwardWeight(precision: Precision, t: TileShape): string {
  // Output pixel q = q0 + li % depth as (image, row, column).
  const pixel = counter(
    ["n", "oy", "ox"],
    "params.out_h",
    "params.out_w",
    "q_begin + row",
    t.depth,
  );
  const { scalar, zero } = wgsl[precision];
  const note = precision === "f32"
    ? []
    : [...f16Note(t), "// Its partial sums are f32, as the (f32) parameters' gradient is."];
  return [
    generatedBy("conv2d.ts"),
    "// Weight gradient for GPUs: an implicit GEMM, gw[co, k] += Σ_q gy[co, q] · im2col(x)[q, k]",
    "// over the output pixels q of one split, k = (input channel, tap), staged through workgroup",
    ...backwardWeightTiling(t),
    `// Reads x and gy in NCHW. Grid: (ceil(k / ${t.side}), ceil(out_channels / ${t.side}), splits).`,
    ...note,
    ...enable(precision),
    "struct Params {",
    ...indent([
      ...geometry,
      "pixels_per_split: u32,   // a multiple of 16",
    ], "  "),
    "}",
    "",
    "@group(0) @binding(0) var<uniform> params: Params;",
    `@group(0) @binding(1) var<storage, read> x: array<${scalar}>;`,
    `@group(0) @binding(2) var<storage, read> gy: array<${scalar}>;`,
    "@group(0) @binding(3) var<storage, read_write> out: array<f32>;",
    "",
    ...tileDeclarations(`output channels (gy) and by ${t.side} values of k (x)`, precision, t),
    "",
    "// gy of output channel co at output pixel q (image n, offset q_in in its plane), or 0 past",
    "// the split's end and the last channel.",
    `fn gy_at(co: u32, n: u32, q_in: u32, q_ok: bool) -> ${scalar} {`,
    "  let ok = q_ok && co < params.out_channels;",
    "  let i = (n * params.out_channels + co) * params.out_h * params.out_w + q_in;",
    `  return select(${zero}, gy[select(0u, i, ok)], ok);`,
    "}",
    "",
    "// x of input channel ci at input row iy, column ix of image n, or 0 in the padding, past the",
    "// split's end (q_ok false) and for k past the end (k_ok false).",
    `fn x_at(n: u32, ci: u32, iy: i32, ix: i32, ok_here: bool) -> ${scalar} {`,
    "  let ok = ok_here && u32(iy) < params.in_h && u32(ix) < params.in_w;",
    "  let i = ((n * params.in_channels + ci) * params.in_h + u32(iy)) * params.in_w + u32(ix);",
    `  return select(${zero}, x[select(0u, i, ok)], ok);`,
    "}",
    "",
    "@compute @workgroup_size(256)",
    "fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u) {",
    `  let k0 = wid.x * ${t.side}u;`,
    `  let co0 = wid.y * ${t.side}u;`,
    "  let taps = params.kh * params.kw;",
    "  let k_total = params.in_channels * taps;",
    "  let pixels = params.out_h * params.out_w;",
    "  let q_begin = wid.z * params.pixels_per_split;",
    "  let q_end = min(params.batch * pixels, q_begin + params.pixels_per_split);",
    `  // This invocation stages pixel row li % ${t.depth} of each slice: output channels and values of k`,
    "  // col + j, j = 0..3, of the tile.",
    `  let row = li % ${t.depth}u;`,
    `  let col = li / ${t.depth}u * 4u;`,
    ...indent(pixel.declare, "  "),
    ...range(4).flatMap((j) => [
      `  let kq${j} = min(k0 + col + ${j}u, k_total - 1u);`,
      `  let ci${j} = kq${j} / taps;`,
      `  let dy${j} = i32(kq${j} % taps / params.kw) - params.pad_y;`,
      `  let dx${j} = i32(kq${j} % params.kw) - params.pad_x;`,
      `  let k_ok${j} = k0 + col + ${j}u < k_total;`,
    ]),
    ...(halves(t) === 1
      ? ["  // ...and computes output channels co0 + 4·ty .. + 3 by k0 + 4·tx .. + 3."]
      : [
        "  // ...and computes output channels co0 + 4·ty .. + 3 and co0 + 64 + 4·ty .. + 3 by",
        "  // k0 + 4·tx .. + 3 and k0 + 64 + 4·tx .. + 3.",
      ]),
    ...indent(accumulators(t), "  "),
    ...indent(
      sliceLoop(
        {
          counter: "q0",
          begin: "q_begin",
          end: "q_end",
          fetch: (first) => [
            "{",
            `  let q = ${first} + row;`,
            "  let q_ok = q < q_end;",
            "  let q_in = oy * params.out_w + ox;",
            "  let iy = i32(oy * params.stride);",
            "  let ix = i32(ox * params.stride);",
            `  a_next = ${vec4Of(precision, (j) => `gy_at(co0 + col + ${j}u, n, q_in, q_ok)`)};`,
            `  b_next = ${
              vec4Of(
                precision,
                (j) => `x_at(n, ci${j}, iy + dy${j}, ix + dx${j}, q_ok && k_ok${j})`,
              )
            };`,
            ...indent(pixel.advance, "  "),
            "}",
          ],
          stage: [
            `a_tile[row * ${rowStride(t)}u + col / 4u] = a_next;`,
            `b_tile[row * ${rowStride(t)}u + col / 4u] = b_next;`,
          ],
        },
        precision,
        t,
      ),
      "  ",
    ),
    ...blockCells(t).flatMap(([i, h]) => [
      `  {`,
      `    let co = co0 + ${ownRow(i)};`,
      ...range(4).map((j) => {
        const k = `k0 + ${ownRow(4 * h + j, "tx")}`;
        return `    if (co < params.out_channels && ${k} < k_total) { out[(wid.z * params.out_channels + co) * k_total + ${k}] = acc${
          cell(t, i, h)
        }.${lanes[j]}; }`;
      }),
      `  }`,
    ]),
    "}",
    "",
  ].join("\n");
}

/**
 * The generated shaders, by file name in shaders/: each kernel in f32 and in f16, and the f16
 * forward once more storing f32 partial sums (`_parts`), for when its sum over k is split;
 * each with 64 × 64 tiles (`_tiled`) and with 128 × 128 ones (`_tiled128`).
 */
export function conv2dShaders(): Map<string, string> {
  return new Map(
    [tile64, tile128].flatMap((t) => {
      const tiled = t.side === 64 ? "tiled" : `tiled${t.side}`;
      return [
        [`conv2d_forward_${tiled}.wgsl`, forward("f32", "f32", t)],
        [`conv2d_forward_${tiled}_f16.wgsl`, forward("f16", "f16", t)],
        [`conv2d_forward_${tiled}_f16_parts.wgsl`, forward("f16", "f32", t)],
        [`conv2d_backward_weight_${tiled}.wgsl`, backwardWeight("f32", t)],
        [`conv2d_backward_weight_${tiled}_f16.wgsl`, backwardWeight("f16", t)],
      ] as const;
    }),
  );
}
