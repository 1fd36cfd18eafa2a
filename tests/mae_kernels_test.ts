// MAE's kernels against PyTorch (tests/fixtures/make_mae_fixtures.py) and finite differences:
// the mask-token insertion of its decoder and its masked, per-patch normalised MSE.
import { Program } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { maskedMse } from "../src/loss/masked_mse.ts";
import { maskArrays } from "../src/methods/mae.ts";
import { insertMaskTokens } from "../src/nn/mask_tokens.ts";
import { Parameter } from "../src/nn/module.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { constant } from "../src/nn/init.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { assertClose, loadFixtureFile, randn, runProgram as run, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/mae_kernels.safetensors", import.meta.url).pathname,
);

/** The mask token as a one-parameter block, and its index tensors for ids_shuffle. */
async function maskTokenSetup(program: Program, ids: Float32Array, shape: number[]) {
  const [n, k, d] = shape;
  const patches = ids.length / n;
  const token = new Parameter([1, 1, d], "embedding", constant(0));
  const block = new ParameterBlock(program.gpu, [["mask_token", token]]);
  const arrays = maskArrays(Uint32Array.from(ids), patches, k - 1);
  const source = program.tensor([n, 1 + patches], "source", "u32");
  const place = program.tensor([n, k], "place", "u32");
  program.gpu.write(source, arrays.source);
  program.gpu.write(place, arrays.place);
  await program.gpu.sync();
  return { token, block, index: { source, place } };
}

Deno.test("mask tokens: the encoder's tokens at their places, the mask token elsewhere, as MAE's decoder", async () => {
  const gpu = await testGpu();
  const f = (name: string) => fixture.get(`mask_tokens.${name}`);
  const program = new Program(gpu, "mask tokens");
  const x = program.tensor(fixture.shape("mask_tokens.input"), "x");
  const { token, block, index } = await maskTokenSetup(
    program,
    f("ids_shuffle"),
    fixture.shape("mask_tokens.input"),
  );
  const pass = insertMaskTokens(program, x, token, index, true);
  const gy = program.tensor(pass.output.shape, "gy");
  const gx = pass.backward(program, gy)!;
  program.keep(pass.output, gx);
  // The mask token's gradient accumulates onto what its buffer held.
  const start = randn(token.grad.size, 3);
  const [y, gxv, gm] = await run(
    program,
    [[x, f("input")], [token.value, f("mask_token")], [gy, f("grad_output")], [
      token.grad,
      start,
    ]],
    [pass.output, gx, token.grad],
  );
  assertClose(y, f("output"), { atol: 0, rtol: 0, label: "output" });
  assertClose(gxv, f("grad_input"), { atol: 0, rtol: 0, label: "grad_input" });
  assertClose(gm, f("grad_mask_token").map((v, i) => v + start[i]), {
    atol: 1e-6,
    rtol: 1e-6,
    label: "grad_mask_token",
  });
  program.destroy();
  block.destroy();
});

Deno.test("mask-token gradients agree with finite differences (width 3, 2 of 5 visible)", async () => {
  const gpu = await testGpu();
  const shape = [3, 3, 3];
  const program = new Program(gpu, "mask tokens gradcheck");
  const x = program.tensor(shape, "x");
  const ids = Float32Array.from([4, 0, 2, 1, 3, 1, 3, 0, 4, 2, 2, 4, 3, 0, 1]);
  const { token, block, index } = await maskTokenSetup(program, ids, shape);
  const pass = insertMaskTokens(program, x, token, index, true);
  const r = program.tensor(pass.output.shape, "r");
  program.clear(block.grads);
  const gx = pass.backward(program, r)!;
  program.keep(pass.output, gx);
  const x0 = randn(x.size, 5);
  const m0 = randn(token.value.size, 6);
  const r0 = randn(r.size, 7);
  gpu.write(r, r0);
  const loss = async (into: Tensor, v: Float32Array<ArrayBuffer>) => {
    gpu.write(into, v);
    gpu.submit(program);
    return dot(r0, await gpu.readF32(pass.output));
  };
  const [gxv, gm] = await run(program, [[x, x0], [token.value, m0]], [gx, token.grad]);
  await checkGradient("mask-token input", (v) => loss(x, v), x0.slice(), gxv);
  gpu.write(x, x0);
  await checkGradient("mask token", (v) => loss(token.value, v), m0.slice(), gm);
  program.destroy();
  block.destroy();
});

/** Records MAE's loss for a fixture-shaped case, returning its tensors. */
function lossProgram(
  program: Program,
  images: number[],
  prediction: number[],
  ids: Float32Array,
  keep: number,
  patchSize: number,
  normalize: boolean,
) {
  const [n] = images;
  const patches = ids.length / n;
  const x = program.tensor(images, "images");
  const pred = program.tensor([n, 1 + patches, prediction[2]], "prediction");
  const mask = program.tensor([n, patches], "mask");
  program.gpu.write(mask, maskArrays(Uint32Array.from(ids), patches, keep).mask);
  const out = maskedMse(program, pred, x, mask, n * (patches - keep), {
    patchSize,
    normalize,
    eps: 1e-6,
  });
  program.keep(out.loss, out.gradInput);
  return { x, pred, ...out };
}

/** The fixture's prediction [N, L, P] behind a class-token row of `fill`. */
function withClassRow(values: Float32Array, n: number, patches: number, fill: number) {
  const size = values.length / (n * patches);
  const out = new Float32Array(n * (1 + patches) * size).fill(fill);
  for (let i = 0; i < n; i++) {
    out.set(
      values.subarray(i * patches * size, (i + 1) * patches * size),
      (i * (1 + patches) + 1) * size,
    );
  }
  return out;
}

for (const normalize of [true, false]) {
  const name = normalize ? "masked_mse_norm" : "masked_mse_raw";
  Deno.test(`MAE loss on masked patches (norm_pix_loss ${normalize ? "on" : "off"}) matches PyTorch`, async () => {
    const gpu = await testGpu();
    const f = (key: string) => fixture.get(`${name}.${key}`);
    const shape = fixture.shape(`${name}.prediction`);
    const [n, patches] = shape;
    const program = new Program(gpu, "masked mse");
    const { x, pred, loss, gradInput } = lossProgram(
      program,
      fixture.shape(`${name}.images`),
      shape,
      f("ids_shuffle"),
      f("keep")[0],
      f("patch_size")[0],
      normalize,
    );
    // The class token's row is no patch: whatever it holds, its gradient is zero.
    const [lossValue, grad] = await run(
      program,
      [[x, f("images")], [pred, withClassRow(f("prediction"), n, patches, 7)]],
      [loss, gradInput],
    );
    assertClose(lossValue, f("loss"), { atol: 1e-6, rtol: 1e-5, label: "loss" });
    assertClose(grad, withClassRow(f("grad_prediction"), n, patches, 0), {
      atol: 1e-7,
      rtol: 1e-5,
      label: "grad_prediction",
    });
    program.destroy();
  });
}

Deno.test("MAE loss gradient agrees with finite differences (3×3 patches, 2 of 9 visible)", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "masked mse gradcheck");
  const ids = Float32Array.from([
    ...[4, 7, 0, 1, 2, 3, 5, 6, 8],
    ...[8, 0, 6, 5, 4, 3, 2, 1, 7],
  ]);
  const { x, pred, loss, gradInput } = lossProgram(
    program,
    [2, 3, 9, 9],
    [2, 10, 27],
    ids,
    2,
    3,
    true,
  );
  const p0 = randn(pred.size, 9);
  gpu.write(x, randn(x.size, 10));
  const [grad] = await run(program, [[pred, p0]], [gradInput]);
  await checkGradient(
    "MAE loss prediction",
    async (v) => {
      gpu.write(pred, v);
      gpu.submit(program);
      return (await gpu.readF32(loss))[0];
    },
    p0.slice(),
    grad,
  );
  program.destroy();
});
