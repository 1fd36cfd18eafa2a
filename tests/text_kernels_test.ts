// The kernels of text encoders against PyTorch (tests/fixtures/make_text_fixtures.py) and
// finite differences: embedding lookup and its scatter-add gradient, cross-entropy on the
// chosen rows, attention masked to the non-padding (and earlier) keys, sequence pooling, and
// a whole text encoder of each pooling.
import { Program } from "../src/gpu/gpu.ts";
import { maskedCrossEntropy } from "../src/loss/masked_cross_entropy.ts";
import { Embedding } from "../src/nn/embedding.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { type Pooling, sequencePool } from "../src/nn/sequence_pool.ts";
import { TextEncoder } from "../src/nn/text_encoder.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { initialize } from "./_method_step.ts";
import { assertClose, loadFixtureFile, randn, runProgram as run, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/text_kernels.safetensors", import.meta.url).pathname,
);
const u32 = (values: Float32Array) => Uint32Array.from(values);
const i32 = (values: Float32Array) => Int32Array.from(values);

/** An embedding table's lookup and backward pass recorded for ids of `shape`. */
async function embeddingCase(count: number, dim: number, shape: number[]) {
  const gpu = await testGpu();
  const embedding = new Embedding(count, dim);
  const block = new ParameterBlock(gpu, embedding.entries());
  const program = new Program(gpu, "embedding");
  const ids = program.tensor(shape, "ids", "u32");
  const pass = embedding.forward(program, ids);
  const gy = program.tensor(pass.output.shape, "gy");
  pass.backward(program, gy);
  program.keep(pass.output);
  return { gpu, embedding, block, program, ids, gy, output: pass.output };
}

Deno.test("embedding lookup and its scatter-add gradient match PyTorch, repeated ids summed", async () => {
  const f = (name: string) => fixture.get(`embedding.${name}`);
  const { embedding, block, program, ids, gy, output } = await embeddingCase(7, 5, [2, 4]);
  // The table's gradient adds to what its buffer held.
  const start = randn(embedding.weight.grad.size, 4);
  const [y, gtable] = await run(
    program,
    [[embedding.weight.value, f("table")], [ids, u32(f("ids"))], [gy, f("grad_output")], [
      embedding.weight.grad,
      start,
    ]],
    [output, embedding.weight.grad],
  );
  assertClose(y, f("output"), { atol: 0, rtol: 0, label: "rows" });
  assertClose(gtable, f("grad_table").map((v, i) => v + start[i]), {
    atol: 1e-6,
    rtol: 1e-6,
    label: "table gradient",
  });
  program.destroy();
  block.destroy();
});

Deno.test("embedding gradients agree with finite differences (11 ids of a 5 × 3 table); an id past the table gives NaN", async () => {
  const { gpu, embedding, block, program, ids, gy, output } = await embeddingCase(5, 3, [11]);
  const idValues = Uint32Array.of(4, 0, 4, 2, 4, 1, 0, 2, 2, 4, 3);
  const r = randn(output.size, 8);
  const table = randn(15, 9);
  const [, grad] = await run(program, [
    [embedding.weight.value, table],
    [ids, idValues],
    [gy, r],
    [embedding.weight.grad, new Float32Array(15)],
  ], [output, embedding.weight.grad]);
  await checkGradient(
    "embedding",
    async (v) => dot(r, (await run(program, [[embedding.weight.value, v]], [output]))[0]),
    table.slice(),
    grad.slice(),
  );
  gpu.write(ids, Uint32Array.of(4, 0, 5, 2, 4, 1, 0, 2, 2, 4, 3));
  gpu.submit(program);
  const rows = await gpu.readF32(output);
  if (!rows.slice(6, 9).every(Number.isNaN) || rows.slice(0, 6).some(Number.isNaN)) {
    throw new Error(`id 5 of 5 rows should give one NaN row, got ${rows}`);
  }
  program.destroy();
  block.destroy();
});

/** gtable + Σ_{p: ids[p] = v} gy[p] in float64, for a table of width `d`. */
function embeddingGradReference(
  start: Float32Array,
  ids: Uint32Array,
  gy: Float32Array,
  d: number,
): Float64Array {
  const out = Float64Array.from(start);
  ids.forEach((v, p) => {
    for (let e = 0; e < d; e++) out[v * d + e] += gy[p * d + e];
  });
  return out;
}

// 37 ids of 13 rows of a 3,000-row table, with repeats; the last row is looked up first and
// last, and row 0 too.
const sparseIds = Uint32Array.of(
  ...[2999, 5, 1234, 0, 5, 2047, 777, 1234, 5, 2998, 64, 0, 1500, 777, 9, 2999, 1234, 300, 5],
  ...[2048, 64, 1999, 0, 777, 1500, 12, 2999, 5, 333, 1234, 2047, 64, 777, 9, 2500, 5, 2999],
);

Deno.test("embedding gradient of 37 ids into a 3,000 × 13 table: the rows used get float64's sums, the others keep theirs", async () => {
  const { embedding, block, program, ids, gy } = await embeddingCase(3000, 13, [37]);
  const start = randn(embedding.weight.grad.size, 12);
  const upstream = randn(37 * 13, 13);
  const [grad] = await run(program, [
    [ids, sparseIds],
    [gy, upstream],
    [embedding.weight.grad, start],
  ], [embedding.weight.grad]);
  const expected = embeddingGradReference(start, sparseIds, upstream, 13);
  assertClose(grad, expected, { atol: 1e-6, rtol: 1e-6, label: "table gradient" });
  // Rows no id uses are not written at all.
  const used = new Set(sparseIds);
  const moved = grad.findIndex((g, i) => !used.has(Math.floor(i / 13)) && g !== start[i]);
  if (moved >= 0) throw new Error(`row ${Math.floor(moved / 13)} is used by no id but changed`);
  program.destroy();
  block.destroy();
});

Deno.test("embedding gradient steps in a row (ids A, other ids B, A again): each sums its own rows, A's twice to the bit", async () => {
  const { embedding, block, program, ids, gy } = await embeddingCase(3000, 13, [37]);
  const start = randn(embedding.weight.grad.size, 14);
  const upstream = randn(37 * 13, 15);
  // Rows of A and others: a row list left from the step before would miss B's new rows.
  const other = sparseIds.map((v, p) => (v * 7 + p) % 3000);
  const step = async (idValues: Uint32Array) =>
    (await run(program, [[ids, idValues], [gy, upstream], [embedding.weight.grad, start]], [
      embedding.weight.grad,
    ]))[0];
  const first = await step(sparseIds);
  const second = await step(other);
  const third = await step(sparseIds);
  assertClose(second, embeddingGradReference(start, other, upstream, 13), {
    atol: 1e-6,
    rtol: 1e-6,
    label: "B's table gradient",
  });
  const differs = third.findIndex((g, i) => !Object.is(g, first[i]));
  if (differs >= 0) {
    throw new Error(`A's gradient [${differs}]: ${third[differs]}, then ${first[differs]}`);
  }
  program.destroy();
  block.destroy();
});

/** Masked cross-entropy recorded for logits [rows, classes]. */
async function maskedCase(rows: number, classes: number) {
  const gpu = await testGpu();
  const program = new Program(gpu, "masked cross-entropy");
  const logits = program.tensor([rows, classes], "logits");
  const targets = program.tensor([rows], "targets", "i32");
  const { loss, gradInput } = maskedCrossEntropy(program, logits, targets);
  program.keep(loss, gradInput);
  const go = async (x: Float32Array, t: Int32Array) => {
    gpu.write(logits, x);
    gpu.write(targets, t);
    gpu.submit(program);
    return (await gpu.read(loss, gradInput)) as Float32Array[];
  };
  return { program, go };
}

Deno.test("cross-entropy on the chosen rows matches PyTorch's ignore_index and finite differences", async () => {
  const f = (name: string) => fixture.get(`masked_cross_entropy.${name}`);
  const { program, go } = await maskedCase(7, 5);
  const [loss, grad] = await go(f("logits"), i32(f("targets")));
  assertClose(loss, f("loss"), { atol: 1e-6, rtol: 1e-6, label: "loss" });
  assertClose(grad, f("grad"), { atol: 1e-7, rtol: 1e-5, label: "gradient" });
  program.destroy();
  // Odd sizes: 5 rows of 7 classes, two ignored; and a target past the classes gives NaN.
  const odd = await maskedCase(5, 70);
  const targets = Int32Array.of(3, -1, 69, -1, 0);
  const x0 = randn(5 * 70, 11, 2);
  const [, g] = await odd.go(x0, targets);
  await checkGradient(
    "masked cross-entropy",
    async (v) => (await odd.go(v, targets))[0][0],
    x0.slice(),
    g.slice(),
  );
  const [bad] = await odd.go(x0, Int32Array.of(3, -1, 70, -1, 0));
  if (!Number.isNaN(bad[0])) throw new Error(`a target past the classes gave ${bad[0]}`);
  odd.program.destroy();
});

/** Sequence pooling of x [N, T, D] by tokens, recorded with its backward pass. */
async function poolCase(shape: number[], pooling: Pooling, pad: number) {
  const gpu = await testGpu();
  const program = new Program(gpu, `pool ${pooling}`);
  const x = program.tensor(shape, "x");
  const tokens = program.tensor(shape.slice(0, 2), "tokens", "u32");
  const pass = sequencePool(program, x, tokens, pad, pooling);
  const gy = program.tensor(pass.output.shape, "gy");
  const gx = pass.backward(program, gy);
  program.keep(pass.output, gx);
  return { program, x, tokens, gy, output: pass.output, gx };
}

Deno.test("sequence pooling (mean, first, last) skips padding and agrees with finite differences", async () => {
  const [n, t, d] = [3, 5, 3];
  const ids = Uint32Array.of(1, 2, 3, 4, 5, 1, 2, 9, 9, 9, 1, 9, 9, 9, 9);
  const x0 = randn(n * t * d, 2);
  for (const pooling of ["mean", "first", "last"] as const) {
    const c = await poolCase([n, t, d], pooling, 9);
    const r = randn(n * d, 3);
    const [y, gx] = await run(c.program, [[c.x, x0], [c.tokens, ids], [c.gy, r]], [c.output, c.gx]);
    // What each pooling takes of sample 1 (tokens 0 and 1 are not padding).
    const at = (k: number, e: number) => x0[(1 * t + k) * d + e];
    const expected = [0, 1, 2].map((e) =>
      pooling === "mean" ? (at(0, e) + at(1, e)) / 2 : pooling === "first" ? at(0, e) : at(1, e)
    );
    assertClose(y.slice(d, 2 * d), expected, { atol: 1e-6, label: `${pooling} of sample 1` });
    await checkGradient(
      `${pooling} pooling`,
      async (v) => dot(r, (await run(c.program, [[c.x, v]], [c.output]))[0]),
      x0.slice(),
      gx.slice(),
    );
    c.program.destroy();
  }
});

/** A text encoder of the fixture's shape, with its whole forward and backward pass recorded. */
async function encoderCase(pooling: Pooling, causal: boolean, segments: boolean) {
  const gpu = await testGpu();
  const encoder = new TextEncoder({
    tokenizer: "test",
    vocabSize: 9,
    pad: fixture.meta.pad as number,
    contextLength: 6,
    dim: 8,
    depth: 2,
    heads: 2,
    causal,
    pooling,
    segments: segments ? 2 : 0,
  });
  const block = new ParameterBlock(gpu, encoder.entries());
  initialize(block, [{ strip: "", take: () => true }]);
  const program = new Program(gpu, "text encoder");
  const tokens = program.tensor([3, 6], "tokens", "u32");
  const segmentIds = segments ? program.tensor([3, 6], "segments", "u32") : undefined;
  const train = { train: true, inputGrad: true };
  const embedded = encoder.embed(program, tokens, segmentIds);
  const encoded = encoder.encode(program, embedded.output, tokens, train);
  const pooled = sequencePool(program, encoded.output, tokens, encoder.config.pad, pooling);
  const gy = program.tensor(pooled.output.shape, "gy");
  program.clear(block.grads);
  embedded.backward(program, encoded.backward(program, pooled.backward(program, gy))!);
  program.keep(pooled.output);
  gpu.write(tokens, u32(fixture.get("encoder.ids")));
  if (segmentIds) gpu.write(segmentIds, u32(fixture.get("encoder.segments")));
  return { gpu, encoder, block, program, gy, features: pooled.output };
}

for (
  const [name, pooling, causal, segments] of [
    ["encoder_mean", "mean", false, false],
    ["encoder_first", "first", false, false],
    ["encoder_last", "last", false, false],
    ["encoder_causal", "last", true, true],
  ] as const
) {
  Deno.test(`a whole text encoder (${name.slice(8)}) matches PyTorch: masked attention, every gradient`, async () => {
    const c = await encoderCase(pooling, causal, segments);
    const [features] = await run(c.program, [[c.gy, fixture.get(`${name}.grad_output`)]], [
      c.features,
    ]);
    assertClose(features, fixture.get(`${name}.features`), { atol: 1e-5, label: "features" });
    for (const [param, grad] of await c.block.readGrads()) {
      const expected = fixture.get(`${name}.grad.${param}`);
      const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assertClose(grad, expected, { atol: 1e-5 * scale + 1e-7, rtol: 1e-4, label: param });
    }
    c.program.destroy();
    c.block.destroy();
  });
}

Deno.test("attention masked to non-padding, earlier keys agrees with finite differences", async () => {
  const c = await encoderCase("mean", true, false);
  const r = randn(3 * 8, 5);
  await run(c.program, [[c.gy, r]], [c.features]);
  const grads = await c.block.readGrads();
  // The first block's qkv weight: every query, key and value of the masked attention.
  const qkv = c.encoder.blocks[0].attn.qkv.weight;
  const values = await c.block.read();
  const w0 = values.get("blocks.0.attn.qkv.weight")!;
  await checkGradient(
    "masked causal attention",
    async (v) => {
      c.gpu.write(qkv.value, v);
      c.gpu.submit(c.program);
      return dot(r, await c.gpu.readF32(c.features));
    },
    w0.slice(),
    grads.get("blocks.0.attn.qkv.weight")!,
  );
  c.program.destroy();
  c.block.destroy();
});
