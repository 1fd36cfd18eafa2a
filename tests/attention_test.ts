import { Program } from "../src/gpu/gpu.ts";
import type { MatmulForm } from "../src/gpu/kernels/transformer.ts";
import { Attention, attentionBackward, attentionForward } from "../src/nn/attention.ts";
import { batchedMatmul } from "../src/nn/batched_matmul.ts";
import { softmaxBackward, softmaxForward } from "../src/nn/softmax.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { assertClose, loadFixtureFile, randn, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/vit_kernels.safetensors", import.meta.url).pathname,
);

/** Records the attention core and its backward pass on qkv [N, T, 3·D]. */
async function attentionCase(shape: number[], heads: number) {
  const gpu = await testGpu();
  const program = new Program(gpu, `attention [${shape}] ${heads} heads`);
  const qkv = program.tensor(shape, "qkv");
  const { output, saved } = attentionForward(program, qkv, heads);
  const gy = program.tensor(output.shape, "gy");
  const gradQkv = attentionBackward(program, saved, gy);
  program.keep(output, gradQkv);
  const run = async (q: Float32Array<ArrayBuffer>, g: Float32Array<ArrayBuffer>) => {
    gpu.write(qkv, q);
    gpu.write(gy, g);
    gpu.submit(program);
    return (await gpu.read(output, gradQkv)) as Float32Array[];
  };
  return { program, run, outputSize: output.size };
}

for (const name of ["attention_a", "attention_b", "attention_c", "attention_d"]) {
  Deno.test(`attention core (${name}) matches timm's Attention in PyTorch`, async () => {
    const shape = fixture.shape(`${name}.qkv`);
    const heads = fixture.get(`${name}.heads`)[0];
    const { program, run } = await attentionCase(shape, heads);
    const [y, gqkv] = await run(
      fixture.get(`${name}.qkv`).slice(),
      fixture.get(`${name}.grad_output`).slice(),
    );
    const tol = { atol: 1e-5, rtol: 1e-5 };
    assertClose(y, fixture.get(`${name}.output`), { ...tol, label: `${name} output` });
    assertClose(gqkv, fixture.get(`${name}.grad_qkv`), { ...tol, label: `${name} grad_qkv` });
    program.destroy();
  });
}

// One head of odd width over an odd token count; three heads of width 5 over more tokens
// than one 8×8 block per side (strided kernels); heads of width 4 and 32 (vec4 kernels).
const gradchecks = [[[1, 7, 15], 1], [[2, 13, 45], 3], [[1, 7, 24], 2], [[2, 9, 96], 1]] as const;
for (const [shape, heads] of gradchecks) {
  Deno.test(`attention core [${shape}], heads ${heads}, agrees with finite differences`, async () => {
    const { program, run, outputSize } = await attentionCase([...shape], heads);
    const q0 = randn(shape[0] * shape[1] * shape[2], 1);
    const r = randn(outputSize, 2);
    const [, gqkv] = await run(q0, r);
    await checkGradient(
      `attention [${shape}]`,
      async (v) => dot(r, (await run(v, r))[0]),
      q0.slice(),
      gqkv,
    );
    program.destroy();
  });
}

Deno.test("softmax with a scale matches PyTorch and finite differences, and zeroes the padding", async () => {
  const gpu = await testGpu();
  const [rows, cols] = fixture.shape("softmax.input");
  const scale = fixture.get("softmax.scale")[0];
  // Rows padded to a multiple of 4, as attention's score rows are; the padding of the input
  // and of the output gradient holds values that must not matter.
  const width = Math.ceil(cols / 4) * 4;
  const pad = (values: Float32Array, fill: number) => {
    const out = new Float32Array(rows * width).fill(fill);
    for (let r = 0; r < rows; r++) out.set(values.subarray(r * cols, (r + 1) * cols), r * width);
    return out;
  };
  const unpad = (values: Float32Array) =>
    Float32Array.from(
      { length: rows * cols },
      (_, i) => values[Math.floor(i / cols) * width + (i % cols)],
    );
  const program = new Program(gpu, "softmax");
  const x = program.tensor([rows, width], "x");
  const gy = program.tensor([rows, width], "gy");
  const y = softmaxForward(program, x, scale, cols);
  const gx = softmaxBackward(program, y, gy, scale, cols);
  program.keep(y, gx);
  const run = async (xs: Float32Array) => {
    gpu.write(x, pad(xs, 1e30));
    gpu.write(gy, pad(fixture.get("softmax.grad_output"), NaN));
    gpu.submit(program);
    return (await gpu.read(y, gx)) as Float32Array[];
  };
  const x0 = fixture.get("softmax.input").slice();
  const [yv, gxv] = await run(x0);
  const tol = { atol: 1e-6, rtol: 1e-5 };
  assertClose(yv, pad(fixture.get("softmax.output"), 0), { ...tol, label: "output" });
  assertClose(gxv, pad(fixture.get("softmax.grad_input"), 0), { ...tol, label: "grad_input" });
  const r = fixture.get("softmax.grad_output");
  await checkGradient(
    "softmax",
    async (v) => dot(r, unpad((await run(v))[0])),
    x0.slice(),
    unpad(gxv),
  );
  program.destroy();
});

// A batch of `outer` × `heads` matrices, rows × cols, stored at an offset inside a larger
// buffer either row-major or (transposed) column-major, heads interleaved in each line as
// attention lays them out, with gaps between lines. `aligned` rounds every offset and stride
// up to whole vec4s, as the vec4 kernels need.
function layout(
  rows: number,
  cols: number,
  outer: number,
  heads: number,
  transpose: boolean,
  aligned: boolean,
) {
  const up = (v: number) => aligned ? Math.ceil(v / 4) * 4 : v;
  const offset = aligned ? 4 : 3;
  const headStride = up(transpose ? rows : cols);
  const line = heads * headStride + (aligned ? 4 : 2);
  const lines = transpose ? cols : rows;
  const view = {
    offset,
    outerStride: lines * line,
    headStride,
    rowStride: transpose ? 1 : line,
    colStride: transpose ? line : 1,
  };
  const at = (o: number, h: number, i: number, j: number) =>
    offset + o * view.outerStride + h * headStride + i * view.rowStride + j * view.colStride;
  return { view, at, size: offset + outer * lines * line };
}

// Every form, with the operand layouts it reads: the strided kernel with each operand
// transposed or not; the vec4 kernels with inner sizes that are and are not multiples of 4.
const products: [MatmulForm, boolean, boolean, number, number, number][] = [
  ["strided", false, false, 9, 11, 5],
  ["strided", false, true, 9, 11, 5],
  ["strided", true, false, 9, 11, 5],
  ["strided", true, true, 9, 11, 5],
  ["nt", false, true, 9, 11, 8],
  ["nn", false, false, 9, 12, 7],
  ["tn", true, false, 9, 12, 7],
];

for (const [form, transposeA, transposeB, m, n, k] of products) {
  const name = `A${transposeA ? "ᵀ" : ""}·B${transposeB ? "ᵀ" : ""} (${form}) ${m}×${k}·${k}×${n}`;
  Deno.test(`batched matmul ${name} matches a float64 reference`, async () => {
    const gpu = await testGpu();
    const [outer, heads] = [2, 3];
    const aligned = form !== "strided";
    const a = layout(
      m,
      form === "nn" ? Math.ceil(k / 4) * 4 : k,
      outer,
      heads,
      transposeA,
      aligned,
    );
    const b = layout(k, n, outer, heads, transposeB, aligned);
    const c = layout(m, n, outer, heads, false, false);
    const program = new Program(gpu, "batched matmul");
    const ta = program.tensor([a.size], "a");
    const tb = program.tensor([b.size], "b");
    const tc = program.tensor([c.size], "c");
    batchedMatmul(
      program,
      "scores",
      form,
      { tensor: ta, ...a.view },
      { tensor: tb, ...b.view },
      { tensor: tc, ...c.view },
      { m, n, k, outer, heads },
    );
    const av = randn(a.size, 1);
    const bv = randn(b.size, 2);
    const sentinel = randn(c.size, 3);
    // "nn" reads A's rows up to a multiple of 4, where they must be zero.
    for (let o = 0; o < outer; o++) {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < m; i++) {
          for (let q = k; q < (form === "nn" ? Math.ceil(k / 4) * 4 : k); q++) {
            av[a.at(o, h, i, q)] = 0;
          }
        }
      }
    }
    gpu.write(ta, av);
    gpu.write(tb, bv);
    gpu.write(tc, sentinel);
    gpu.submit(program);
    const cv = await gpu.readF32(tc);
    // Elements outside the output matrices keep their values.
    const expected = Float64Array.from(sentinel);
    for (let o = 0; o < outer; o++) {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let sum = 0;
            for (let q = 0; q < k; q++) sum += av[a.at(o, h, i, q)] * bv[b.at(o, h, q, j)];
            expected[c.at(o, h, i, j)] = sum;
          }
        }
      }
    }
    assertClose(cv, expected, { atol: 1e-5, rtol: 1e-5, label: name });
    program.destroy();
  });
}

Deno.test("Attention layer: timm's names and shapes, trunc-normal weights, zero biases", async () => {
  const gpu = await testGpu();
  const attention = new Attention(96, 3);
  const block = new ParameterBlock(gpu, attention.entries());
  let seed = 1;
  block.initialize(() => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646);
  const shapes = [...block.shapes].map(([name, shape]) => `${name}[${shape}]`).join(" ");
  const expected = "qkv.weight[288,96] qkv.bias[288] proj.weight[96,96] proj.bias[96]";
  if (shapes !== expected) throw new Error(`entries ${shapes}`);
  const values = await block.read();
  for (const name of ["qkv.weight", "proj.weight"]) {
    const v = values.get(name)!;
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    if (Math.abs(std / 0.02 - 1) > 0.05) throw new Error(`${name} std ${std}, expected 0.02`);
  }
  for (const name of ["qkv.bias", "proj.bias"]) {
    if (values.get(name)!.some((x) => x !== 0)) throw new Error(`${name} is not zero`);
  }
  block.destroy();
});
