// The ViT's kernels besides the linear layers on f16 activations (the f16 variants of layer
// norm, GELU, attention's batched products and softmax, and the token plumbing, see
// inPrecision), against PyTorch from the same f16 values (tests/fixtures/make_vit_f16.py).
// Finite differences mean nothing at f16's resolution: the same kernels in f32, which differ
// only in their load and store conversions, are checked by finite differences in
// tests/layer_norm_test.ts, tests/gelu_test.ts, tests/attention_test.ts and tests/vit_test.ts.
// The whole ViT in f16 against the f32 network is tests/precision_test.ts.
import { Program } from "../src/gpu/gpu.ts";
import type { MatmulForm } from "../src/gpu/kernels/transformer.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { attentionForward } from "../src/nn/attention.ts";
import { batchedMatmul, type StridedMatrices } from "../src/nn/batched_matmul.ts";
import { geluBackward, geluForward } from "../src/nn/gelu.ts";
import {
  layerNormBackwardInput,
  layerNormBackwardWeight,
  layerNormForward,
} from "../src/nn/layer_norm.ts";
import { softmaxBackward, softmaxForward } from "../src/nn/softmax.ts";
import {
  addPositions,
  addPositionsBackward,
  gatherTokens,
  patchify,
  prependClassToken,
  prependClassTokenBackward,
  scatterTokens,
} from "../src/nn/tokens.ts";
import { assertEquals } from "./_assert.ts";
import { adapterClasses, assertClose, familyGpu, loadFixtureFile, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/vit_f16.safetensors", import.meta.url).pathname,
);

/**
 * Each f16 output is computed in f32 from exact f16 (and f32 parameter) values and converted
 * once. WGSL lets that conversion land on either neighbouring f16 value and flush f16's
 * subnormals: within one f16 ulp (2⁻¹⁰ of the value), or 2⁻¹⁴ (the smallest normal f16) near
 * 0. The f32 value itself is as close to PyTorch's as in the f32 kernels' tests (atol 2e-5,
 * rtol 1e-4: sums of ≤ 12 terms of size ~1, GELU's erfc). A term lost, a sum or statistic kept
 * in f16, or a second rounding of an intermediate is off by more (values here are ~1).
 */
const f16Outputs = { atol: 2 ** -14 + 2e-5, rtol: 2 ** -10 + 1e-4 };
// Parameter gradients stay f32, summed in f32 from exact f16 values: the f32 tests' bounds.
const sums = { atol: 2e-4, rtol: 1e-4 };
// Copies move f16 values unchanged.
const exact = { atol: 0, rtol: 0 };

/**
 * The fixture's values `name.key` in tensors of `program` (a new one by default), f16 unless
 * the key names another type (`key:f32`).
 */
function inputs(
  gpu: Awaited<ReturnType<typeof testGpu>>,
  name: string,
  keys: string[],
  program = new Program(gpu, `f16 ${name}`),
) {
  const tensors = keys.map((key) => {
    const [k, dtype] = key.split(":") as [string, "f16" | "f32" | "u32" | undefined];
    const values = fixture.get(`${name}.${k}`);
    const t = program.tensor(fixture.shape(`${name}.${k}`), k, dtype ?? "f16");
    gpu.write(
      t,
      t.dtype === "f16"
        ? Float16Array.from(values)
        : t.dtype === "u32"
        ? Uint32Array.from(values)
        : values.slice(),
    );
    return t;
  });
  return { program, tensors };
}

/** Submits `program`, reads `outputs` (f16 ones must come back as f16) and destroys it. */
async function results(gpu: Awaited<ReturnType<typeof testGpu>>, program: Program, outputs: {
  f16?: Tensor[];
  f32?: Tensor[];
}) {
  const all = [...outputs.f16 ?? [], ...outputs.f32 ?? []];
  program.keep(...all);
  gpu.submit(program);
  const values = await gpu.read(...all);
  program.destroy();
  values.forEach((v, i) => {
    const f16 = i < (outputs.f16?.length ?? 0);
    assertEquals(v.constructor.name, f16 ? "Float16Array" : "Float32Array", `output ${i}`);
  });
  return values;
}

for (const adapterClass of adapterClasses) {
  Deno.test(`layer norm on f16 activations (${adapterClass} kernels) matches PyTorch, γ and β gradients in f32`, async () => {
    const gpu = await familyGpu(adapterClass);
    const { program, tensors: [x, w, b, gy, gw, gb] } = inputs(gpu, "layer_norm", [
      "x",
      "weight:f32",
      "bias:f32",
      "r",
      "grad_weight:f32",
      "grad_bias:f32",
    ]);
    // The parameter gradients accumulate: start them at 0.
    program.clear(gw);
    program.clear(gb);
    const { output, saved } = layerNormForward(program, x, w, b, fixture.meta.eps as number);
    const gx = layerNormBackwardInput(program, saved, gy, w);
    layerNormBackwardWeight(program, saved, gy, gw, gb);
    const f = (key: string) => fixture.get(`layer_norm.${key}`);
    const [y, gxv, gwv, gbv] = await results(gpu, program, { f16: [output, gx], f32: [gw, gb] });
    assertClose(y, f("y"), { ...f16Outputs, label: "output" });
    assertClose(gxv, f("grad_x"), { ...f16Outputs, label: "input gradient" });
    assertClose(gwv, f("grad_weight"), { ...sums, label: "γ gradient" });
    assertClose(gbv, f("grad_bias"), { ...sums, label: "β gradient" });
  });
}

Deno.test("GELU on f16 activations matches PyTorch", async () => {
  const gpu = await testGpu();
  const { program, tensors: [x, gy] } = inputs(gpu, "gelu", ["x", "r"]);
  const y = geluForward(program, x);
  const gx = geluBackward(program, x, gy);
  const [yv, gxv] = await results(gpu, program, { f16: [y, gx] });
  assertClose(yv, fixture.get("gelu.y"), { ...f16Outputs, label: "output" });
  assertClose(gxv, fixture.get("gelu.grad_x"), { ...f16Outputs, label: "input gradient" });
});

Deno.test("softmax on f16 scores matches PyTorch, padding zeroed", async () => {
  const gpu = await testGpu();
  const { program, tensors: [x, gy] } = inputs(gpu, "softmax", ["x", "r"]);
  const scale = fixture.meta.softmax_scale as number;
  const y = softmaxForward(program, x, scale, 5);
  const gx = softmaxBackward(program, y, gy, scale, 5);
  const [yv, gxv] = await results(gpu, program, { f16: [y, gx] });
  assertClose(yv, fixture.get("softmax.y"), { ...f16Outputs, label: "output" });
  assertClose(gxv, fixture.get("softmax.grad_x"), { ...f16Outputs, label: "input gradient" });
});

// A [2, 2, 5, 8] · B [2, 2, 8, 12] laid out as each form reads its operands: row-major A
// (rows padded to 8, zero past k) for strided, nt and nn; A stored transposed (i contiguous,
// 8 wide) for tn; B stored transposed for nt. The products of f16 values are exact in f32 and
// summed in f32: one rounding of C.
const [m, k, n] = [5, 8, 12];
const forms: MatmulForm[] = ["strided", "nt", "nn", "tn"];
for (const form of forms) {
  Deno.test(`attention's batched product (${form}) on f16 operands matches PyTorch`, async () => {
    const gpu = await testGpu();
    const program = new Program(gpu, `f16 matmul ${form}`);
    const a = fixture.get("matmul.a");
    const b = fixture.get("matmul.b");
    const batches = 4;
    const aRows = form === "tn" ? k : m;
    const aCols = 8;
    const hostA = new Float16Array(batches * aRows * aCols);
    const hostB = new Float16Array(batches * k * n);
    for (let s = 0; s < batches; s++) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < k; j++) {
          const at = form === "tn" ? j * aCols + i : i * aCols + j;
          hostA[s * aRows * aCols + at] = a[(s * m + i) * k + j];
        }
      }
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < n; j++) {
          const at = form === "nt" ? j * k + i : i * n + j;
          hostB[s * k * n + at] = b[(s * k + i) * n + j];
        }
      }
    }
    const ta = program.tensor([batches, aRows, aCols], "a", "f16");
    const tb = program.tensor([batches, k * n], "b", "f16");
    const tc = program.tensor([batches, m, n], "c", "f16");
    const matrices = (tensor: Tensor, size: number, row: number, col: number) => ({
      tensor,
      offset: 0,
      outerStride: 2 * size,
      headStride: size,
      rowStride: row,
      colStride: col,
    });
    const A: StridedMatrices = form === "tn"
      ? matrices(ta, aRows * aCols, 1, aCols)
      : matrices(ta, aRows * aCols, aCols, 1);
    const B: StridedMatrices = form === "nt"
      ? matrices(tb, k * n, 1, k)
      : matrices(tb, k * n, n, 1);
    batchedMatmul(program, "scores", form, A, B, matrices(tc, m * n, n, 1), {
      m,
      n,
      k,
      outer: 2,
      heads: 2,
    });
    gpu.write(ta, hostA);
    gpu.write(tb, hostB);
    const [c] = await results(gpu, program, { f16: [tc] });
    assertClose(c, fixture.get("matmul.c"), { ...f16Outputs, label: "product" });
  });
}

Deno.test("position embeddings on f16 tokens match PyTorch, their gradient in f32", async () => {
  const gpu = await testGpu();
  const { program, tensors: [x, pos, gy, gpos] } = inputs(gpu, "positions", [
    "x",
    "pos:f32",
    "r",
    "grad_pos:f32",
  ]);
  program.clear(gpos);
  const y = addPositions(program, x, pos, 1);
  addPositionsBackward(program, gy, gpos, 1);
  const [yv, gposv] = await results(gpu, program, { f16: [y], f32: [gpos] });
  assertClose(yv, fixture.get("positions.y"), { ...f16Outputs, label: "output" });
  assertClose(gposv, fixture.get("positions.grad_pos"), { ...sums, label: "position gradient" });
});

for (const learned of [true, false]) {
  Deno.test(`class token on f16 tokens (${learned ? "learned" : "fixed"} positions) matches PyTorch, its gradients in f32`, async () => {
    const gpu = await testGpu();
    const { program, tensors: [x, cls, pos, gy, gcls, gpos] } = inputs(gpu, "class_token", [
      "x",
      "cls:f32",
      "pos:f32",
      "r",
      "grad_cls:f32",
      "grad_pos:f32",
    ]);
    program.clear(gcls);
    program.clear(gpos);
    const y = prependClassToken(program, x, cls, pos);
    const gx = prependClassTokenBackward(program, gy, gcls, learned ? gpos : undefined);
    const [yv, gxv, gclsv, gposv] = await results(gpu, program, {
      f16: [y, gx],
      f32: [gcls, gpos],
    });
    const f = (key: string) => fixture.get(`class_token.${key}`);
    assertClose(yv, f("y"), { ...f16Outputs, label: "output" });
    assertClose(gxv, f("grad_x"), { ...exact, label: "tokens' gradient" });
    assertClose(gclsv, f("grad_cls"), { ...sums, label: "class token gradient" });
    const expectedPos = learned ? f("grad_pos") : new Float32Array(gposv.length);
    assertClose(gposv, expectedPos, { ...sums, label: "position gradient" });
  });
}

Deno.test("token gather and scatter, and patchify, copy f16 values exactly", async () => {
  const gpu = await testGpu();
  const { program, tensors: [x, index, gy] } = inputs(gpu, "gather", ["x", "index:u32", "r"]);
  const y = gatherTokens(program, x, index);
  const gx = scatterTokens(program, gy, index, 4);
  const { tensors: [images] } = inputs(gpu, "patchify", ["x"], program);
  const patches = patchify(program, images, 4);
  const [yv, gxv, pv] = await results(gpu, program, { f16: [y, gx, patches] });
  assertClose(yv, fixture.get("gather.y"), { ...exact, label: "gathered" });
  assertClose(gxv, fixture.get("gather.grad_x"), { ...exact, label: "scattered" });
  assertClose(pv, fixture.get("patchify.y"), { ...exact, label: "patches" });
});

// f16 holds the attention scores, so they must be scaled by 1/√dh before they are rounded, as
// PyTorch scales q before its product: unscaled they would overflow at √dh times smaller
// logits. Here q = k = 64·s_t on 16 lanes (s_t: orthogonal ±1 vectors), so that q·k is
// 16·64² = 65,536 on the diagonal, past f16's largest value (65,504), and 0 off it; the head
// of width 18 (the strided products) adds two lanes of ±16 (±512 to q·k). Scaled, the
// diagonal is ~16,000 above the rest: the probabilities are one-hot on it and the output is v
// itself, exactly. Unscaled scores store inf, and the softmax makes NaN of it.
for (const headDim of [16, 18]) {
  Deno.test(`attention on f16 qkv (head width ${headDim}, ${headDim % 4 === 0 ? "vec4" : "strided"} products) scales its scores before they are stored`, async () => {
    const gpu = await testGpu();
    const program = new Program(gpu, "f16 attention with large logits");
    const [t, d] = [5, headDim];
    // Walsh functions: token 0 all +1, token j the sign of bit j − 1 of the lane.
    const sign = (token: number, i: number) =>
      (token === 0 || (i >> (token - 1)) % 2 === 0) ? 1 : -1;
    const qkv = new Float16Array(t * 3 * d);
    for (let token = 0; token < t; token++) {
      for (let i = 0; i < d; i++) {
        const base = token * 3 * d;
        const q = 64 * sign(token, i % 16) * (i < 16 ? 1 : 0.25);
        qkv[base + i] = q;
        qkv[base + d + i] = q;
        qkv[base + 2 * d + i] = token + i / 32;
      }
    }
    const x = program.tensor([1, t, 3 * d], "qkv", "f16");
    const { output } = attentionForward(program, x, 1);
    gpu.write(x, qkv);
    const [y] = await results(gpu, program, { f16: [output] });
    const expected = new Float32Array(t * d);
    for (let token = 0; token < t; token++) {
      for (let i = 0; i < d; i++) expected[token * d + i] = qkv[token * 3 * d + 2 * d + i];
    }
    assertClose(y, expected, { ...exact, label: "attention output" });
  });
}
