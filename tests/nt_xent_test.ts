import { Program } from "../src/gpu/gpu.ts";
import type { Gpu } from "../src/gpu/gpu.ts";
import { ntXent } from "../src/loss/nt_xent.ts";
import { checkGradient } from "./_gradcheck.ts";
import { assertClose, loadFixture, randn, testGpu } from "./_util.ts";

/** A recorded NT-Xent loss over projections of a fixed shape, run on given values. */
class NtXentRun {
  readonly program: Program;
  readonly #z;
  readonly #out;

  constructor(readonly gpu: Gpu, rows: number, cols: number, temperature: number) {
    this.program = new Program(gpu, "nt-xent test");
    this.#z = this.program.tensor([rows, cols], "z");
    this.#out = ntXent(this.program, this.#z, temperature);
    this.program.keep(this.#out.loss, this.#out.gradInput);
  }

  async run(z: Float32Array<ArrayBuffer>): Promise<{ loss: number; grad: Float32Array }> {
    this.gpu.write(this.#z, z);
    this.gpu.submit(this.program);
    const [loss, grad] = await this.gpu.read(this.#out.loss, this.#out.gradInput);
    return { loss: loss[0], grad: grad as Float32Array };
  }
}

/** NT-Xent and its gradient in float64, written out directly from the definition. */
function reference(z: ArrayLike<number>, rows: number, cols: number, temperature: number) {
  const half = rows / 2;
  const zhat = new Float64Array(rows * cols);
  const norms = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let sum = 0;
    for (let k = 0; k < cols; k++) sum += z[i * cols + k] ** 2;
    norms[i] = Math.sqrt(sum);
    for (let k = 0; k < cols; k++) zhat[i * cols + k] = z[i * cols + k] / Math.max(norms[i], 1e-12);
  }
  const s = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < rows; j++) {
      let dot = 0;
      for (let k = 0; k < cols; k++) dot += zhat[i * cols + k] * zhat[j * cols + k];
      s[i * rows + j] = dot / temperature;
    }
  }
  // g[i][j] = ∂loss/∂S_ij = (softmax_ij − onehot_ij) / rows, zero on the diagonal.
  const g = new Float64Array(rows * rows);
  let loss = 0;
  for (let i = 0; i < rows; i++) {
    let max = -Infinity;
    for (let j = 0; j < rows; j++) if (j !== i) max = Math.max(max, s[i * rows + j]);
    let sum = 0;
    for (let j = 0; j < rows; j++) if (j !== i) sum += Math.exp(s[i * rows + j] - max);
    const lse = max + Math.log(sum);
    const positive = (i + half) % rows;
    loss += (lse - s[i * rows + positive]) / rows;
    for (let j = 0; j < rows; j++) {
      if (j === i) continue;
      g[i * rows + j] = (Math.exp(s[i * rows + j] - lse) - (j === positive ? 1 : 0)) / rows;
    }
  }
  const grad = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const gzhat = new Float64Array(cols);
    for (let j = 0; j < rows; j++) {
      const h = (g[i * rows + j] + g[j * rows + i]) / temperature;
      for (let k = 0; k < cols; k++) gzhat[k] += h * zhat[j * cols + k];
    }
    let projection = 0;
    for (let k = 0; k < cols; k++) projection += zhat[i * cols + k] * gzhat[k];
    for (let k = 0; k < cols; k++) {
      grad[i * cols + k] = (gzhat[k] - zhat[i * cols + k] * projection) / norms[i];
    }
  }
  return { loss, grad };
}

function concat(a: Float32Array, b: Float32Array): Float32Array<ArrayBuffer> {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

for (const name of ["nt_xent_0", "nt_xent_1"]) {
  Deno.test(`nt-xent matches the PyTorch fixture ${name}`, async () => {
    const gpu = await testGpu();
    const fixture = await loadFixture(name);
    const temperature = fixture.meta.temperature as number;
    const [n, cols] = fixture.shape("z1");
    const z = concat(fixture.get("z1"), fixture.get("z2"));
    const expectedGrad = concat(fixture.get("grad_z1"), fixture.get("grad_z2"));
    const run = new NtXentRun(gpu, 2 * n, cols, temperature);
    const { loss, grad } = await run.run(z);
    // The loss is a logsumexp of values up to 1/τ, computed in f32: a few ulps of ~5.
    assertClose([loss], fixture.get("loss"), { atol: 1e-6, rtol: 1e-6, label: `${name} loss` });
    // Gradients are O(1/(2N·τ)); f32 rounding of ẑ, S and the softmax leaves ~1e-7 absolute.
    assertClose(grad, expectedGrad, { atol: 1e-6, rtol: 1e-4, label: `${name} gradient` });
    // The float64 reference below agrees with PyTorch, so it can stand in where no fixture is.
    const ref = reference(z, 2 * n, cols, temperature);
    assertClose([ref.loss], fixture.get("loss"), { atol: 1e-6, rtol: 1e-6, label: "reference" });
    assertClose(ref.grad, expectedGrad, { atol: 1e-7, rtol: 1e-5, label: "reference gradient" });
    run.program.destroy();
  });
}

Deno.test("nt-xent matches a float64 reference over many workgroups and partial blocks", async () => {
  const gpu = await testGpu();
  // 258 rows: not a multiple of the 4×4 blocks or of the 64 invocations striding a row.
  const [rows, cols, temperature] = [258, 33, 0.2];
  const z = randn(rows * cols, 11);
  const run = new NtXentRun(gpu, rows, cols, temperature);
  const { loss, grad } = await run.run(z);
  const ref = reference(z, rows, cols, temperature);
  assertClose([loss], [ref.loss], { atol: 1e-6, rtol: 1e-6, label: "loss" });
  // Values are ~1e-3 here; each sums 258 f32 products.
  assertClose(grad, ref.grad, { atol: 1e-7, rtol: 1e-4, label: "gradient" });
  run.program.destroy();
});

for (const [n, cols, temperature] of [[3, 7, 0.1], [5, 7, 0.5], [3, 7, 1.0], [5, 9, 0.2]]) {
  Deno.test(`nt-xent gradient matches finite differences: N ${n}, D ${cols}, τ ${temperature}`, async () => {
    const gpu = await testGpu();
    const run = new NtXentRun(gpu, 2 * n, cols, temperature);
    const z = randn(2 * n * cols, 100 + n * cols);
    const { grad } = await run.run(z);
    await checkGradient(`nt-xent N ${n} D ${cols}`, async (x) => (await run.run(x)).loss, z, grad);
    run.program.destroy();
  });
}

Deno.test("nt-xent of one pair is zero with zero gradient", async () => {
  const gpu = await testGpu();
  const run = new NtXentRun(gpu, 2, 7, 0.5);
  const { loss, grad } = await run.run(randn(14, 5));
  // Each row's softmax has a single entry, its positive.
  assertClose([loss], [0], { atol: 1e-7, rtol: 0, label: "loss" });
  assertClose(grad, new Float32Array(14), { atol: 1e-7, rtol: 0, label: "gradient" });
  run.program.destroy();
});

Deno.test("nt-xent gradient is orthogonal to each row and scales inversely with it", async () => {
  const gpu = await testGpu();
  const [rows, cols, scaled, factor] = [10, 7, 3, 3.5];
  const run = new NtXentRun(gpu, rows, cols, 0.5);
  const z = randn(rows * cols, 21);
  const { loss, grad } = await run.run(z);
  const zScaled = z.slice();
  for (let k = 0; k < cols; k++) zScaled[scaled * cols + k] *= factor;
  const after = await run.run(zScaled);
  // The loss sees only the directions of the rows.
  assertClose([after.loss], [loss], { atol: 1e-6, rtol: 1e-6, label: "loss after scaling" });
  const expected = grad.map((g, i) => Math.floor(i / cols) === scaled ? g / factor : g);
  assertClose(after.grad, expected, { atol: 1e-7, rtol: 1e-4, label: "gradient after scaling" });
  for (let i = 0; i < rows; i++) {
    let dot = 0;
    let norm = 0;
    for (let k = 0; k < cols; k++) {
      dot += grad[i * cols + k] * z[i * cols + k];
      norm += grad[i * cols + k] ** 2;
    }
    assertClose([dot], [0], { atol: 1e-6 * Math.sqrt(norm), rtol: 0, label: `row ${i} · grad` });
  }
  run.program.destroy();
});
