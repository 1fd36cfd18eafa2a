import { Program } from "../src/gpu/gpu.ts";
import type { Gpu } from "../src/gpu/gpu.ts";
import { crossEntropy } from "../src/loss/cross_entropy.ts";
import { checkGradient } from "./_gradcheck.ts";
import { assertClose, loadFixture, randn, testGpu } from "./_util.ts";

/** A recorded cross-entropy over logits of a fixed shape, run on given values and labels. */
class CrossEntropyRun {
  readonly program: Program;
  readonly #logits;
  readonly #labels;
  readonly #out;

  constructor(readonly gpu: Gpu, rows: number, classes: number) {
    this.program = new Program(gpu, "cross-entropy test");
    this.#logits = this.program.tensor([rows, classes], "logits");
    this.#labels = this.program.tensor([rows], "labels", "i32");
    this.#out = crossEntropy(this.program, this.#logits, this.#labels);
    this.program.keep(this.#out.loss, this.#out.gradInput);
  }

  async run(logits: Float32Array<ArrayBuffer>, labels: Int32Array<ArrayBuffer>) {
    this.gpu.write(this.#logits, logits);
    this.gpu.write(this.#labels, labels);
    this.gpu.submit(this.program);
    const [loss, grad] = await this.gpu.read(this.#out.loss, this.#out.gradInput);
    return { loss: loss[0], grad: grad as Float32Array };
  }
}

/** Mean softmax cross-entropy and its gradient in float64. */
function reference(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number) {
  const rows = labels.length;
  const grad = new Float64Array(rows * classes);
  let loss = 0;
  for (let i = 0; i < rows; i++) {
    const row = Array.from({ length: classes }, (_, j) => logits[i * classes + j]);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((sum, x) => sum + Math.exp(x - max), 0));
    loss += (lse - row[labels[i]]) / rows;
    row.forEach((x, j) => {
      grad[i * classes + j] = (Math.exp(x - lse) - (j === labels[i] ? 1 : 0)) / rows;
    });
  }
  return { loss, grad };
}

function randomLabels(rows: number, classes: number, seed: number): Int32Array<ArrayBuffer> {
  return Int32Array.from(randn(rows, seed), (v) => Math.floor(Math.abs(v) * 7919) % classes);
}

Deno.test("cross-entropy matches the PyTorch fixture", async () => {
  const gpu = await testGpu();
  const fixture = await loadFixture("cross_entropy");
  const [rows, classes] = fixture.shape("logits");
  // The labels are I64 in the file; the kernel takes i32.
  const labels = Int32Array.from(fixture.get("labels"));
  const run = new CrossEntropyRun(gpu, rows, classes);
  const { loss, grad } = await run.run(fixture.get("logits").slice(), labels);
  // f32 logsumexp of O(1) logits: a few ulps; gradients are O(1/N).
  assertClose([loss], fixture.get("loss"), { atol: 1e-6, rtol: 1e-6, label: "loss" });
  assertClose(grad, fixture.get("grad_logits"), { atol: 1e-7, rtol: 1e-5, label: "gradient" });
  run.program.destroy();
});

Deno.test("cross-entropy stays finite and exact for logits far beyond exp's range", async () => {
  const gpu = await testGpu();
  // 1000 classes: rows span many strides of the workgroup; logits up to ~±200 overflow exp
  // unless the row maximum is subtracted.
  const [rows, classes] = [37, 1000];
  const logits = randn(rows * classes, 3, 50);
  const labels = randomLabels(rows, classes, 4);
  const run = new CrossEntropyRun(gpu, rows, classes);
  const { loss, grad } = await run.run(logits, labels);
  const ref = reference(logits, labels, classes);
  assertClose([loss], [ref.loss], { atol: 1e-5, rtol: 1e-6, label: "loss" });
  assertClose(grad, ref.grad, { atol: 1e-8, rtol: 1e-4, label: "gradient" });
  run.program.destroy();
});

for (const [rows, classes] of [[5, 7], [1, 3], [3, 130]]) {
  Deno.test(`cross-entropy gradient matches finite differences: N ${rows}, K ${classes}`, async () => {
    const gpu = await testGpu();
    const run = new CrossEntropyRun(gpu, rows, classes);
    const logits = randn(rows * classes, rows * classes);
    const labels = randomLabels(rows, classes, rows + classes);
    const { grad } = await run.run(logits, labels);
    await checkGradient(
      `cross-entropy N ${rows} K ${classes}`,
      async (x) => (await run.run(x, labels)).loss,
      logits,
      grad,
    );
    run.program.destroy();
  });
}

Deno.test("cross-entropy with a label out of range is NaN", async () => {
  const gpu = await testGpu();
  const [rows, classes] = [3, 5];
  const run = new CrossEntropyRun(gpu, rows, classes);
  for (const bad of [5, -1]) {
    const { loss } = await run.run(randn(rows * classes, 9), Int32Array.from([0, bad, 4]));
    if (!Number.isNaN(loss)) {
      throw new Error(`label ${bad} of ${classes} classes gave loss ${loss}`);
    }
  }
  run.program.destroy();
});
