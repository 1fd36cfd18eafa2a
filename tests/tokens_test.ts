import { Program } from "../src/gpu/gpu.ts";
import {
  addPositions,
  addPositionsBackward,
  gatherTokens,
  patchify,
  patchifyBackward,
  prependClassToken,
  prependClassTokenBackward,
  scatterTokens,
  sincosPositions,
} from "../src/nn/tokens.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { assertClose, loadFixtureFile, randn, runProgram as run, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/vit_kernels.safetensors", import.meta.url).pathname,
);
const exact = { atol: 0, rtol: 0 };
// Sums over a batch of two or three values: a rounding or two.
const summed = { atol: 1e-6, rtol: 1e-6 };

Deno.test("position embeddings add to rows 1…T and sum their gradient over the batch", async () => {
  const gpu = await testGpu();
  const f = (n: string) => fixture.get(`pos_embed.${n}`);
  const program = new Program(gpu, "pos embed");
  const x = program.tensor(fixture.shape("pos_embed.input"), "x");
  const pos = program.tensor(fixture.shape("pos_embed.pos"), "pos");
  const gy = program.tensor(x.shape, "gy");
  const gpos = program.tensor(pos.shape, "gpos");
  const y = addPositions(program, x, pos, 1);
  program.keep(y);
  addPositionsBackward(program, gy, gpos, 1);
  const start = randn(pos.size, 5);
  const [yv, gposv] = await run(
    program,
    [[x, f("input")], [pos, f("pos")], [gy, f("grad_output")], [gpos, start]],
    [y, gpos],
  );
  assertClose(yv, f("output"), { ...exact, label: "output" });
  // The gradient accumulates onto what the buffer held.
  assertClose(gposv, f("grad_pos").map((v, i) => v + start[i]), { ...summed, label: "grad_pos" });
  program.destroy();
});

for (const learned of [true, false]) {
  Deno.test(`class token prepends with position 0 (${learned ? "learned" : "fixed"} positions)`, async () => {
    const gpu = await testGpu();
    const f = (n: string) => fixture.get(`class_token.${n}`);
    const program = new Program(gpu, "class token");
    const x = program.tensor(fixture.shape("class_token.input"), "x");
    const cls = program.tensor(fixture.shape("class_token.cls"), "cls");
    const pos = program.tensor(fixture.shape("class_token.pos"), "pos");
    const gcls = program.tensor(cls.shape, "gcls");
    const gpos = program.tensor(pos.shape, "gpos");
    const y = prependClassToken(program, x, cls, pos);
    const gy = program.tensor(y.shape, "gy");
    const gx = prependClassTokenBackward(program, gy, gcls, learned ? gpos : undefined);
    program.keep(y, gx);
    const startCls = randn(cls.size, 6);
    const startPos = randn(pos.size, 7);
    const [yv, gxv, gclsv, gposv] = await run(
      program,
      [[x, f("input")], [cls, f("cls")], [pos, f("pos")], [gy, f("grad_output")], [
        gcls,
        startCls,
      ], [gpos, startPos]],
      [y, gx, gcls, gpos],
    );
    assertClose(yv, f("output"), { ...exact, label: "output" });
    assertClose(gxv, f("grad_input"), { ...exact, label: "grad_input" });
    assertClose(gclsv, f("grad_cls").map((v, i) => v + startCls[i]), {
      ...summed,
      label: "grad_cls",
    });
    const gradPos = learned ? f("grad_pos").map((v, i) => v + startPos[i]) : startPos;
    assertClose(gposv, gradPos, { ...summed, label: "grad_pos" });
    program.destroy();
  });
}

Deno.test("tokens gather by index, and scatter back into zeros as the gradient", async () => {
  const gpu = await testGpu();
  const f = (n: string) => fixture.get(`gather.${n}`);
  const program = new Program(gpu, "gather");
  const x = program.tensor(fixture.shape("gather.input"), "x");
  const index = program.tensor(fixture.shape("gather.index"), "index", "u32");
  const y = gatherTokens(program, x, index);
  const gy = program.tensor(y.shape, "gy");
  const gx = scatterTokens(program, gy, index, x.shape[1]);
  program.keep(y, gx);
  // Stale values in the scatter's memory must not survive: run once with other data first.
  await run(program, [[x, randn(x.size, 8)], [index, Uint32Array.from(f("index"))], [
    gy,
    randn(gy.size, 9),
  ]], []);
  const [yv, gxv] = await run(
    program,
    [[x, f("input")], [index, Uint32Array.from(f("index"))], [gy, f("grad_output")]],
    [y, gx],
  );
  assertClose(yv, f("output"), { ...exact, label: "output" });
  assertClose(gxv, f("grad_input"), { ...exact, label: "grad_input" });
  program.destroy();
});

Deno.test("patchify lays patches out as a convolution weight; its gradient inverts it", async () => {
  const gpu = await testGpu();
  const f = (n: string) => fixture.get(`patchify.${n}`);
  const p = f("patch_size")[0];
  const program = new Program(gpu, "patchify");
  const x = program.tensor(fixture.shape("patchify.input"), "x");
  const y = patchify(program, x, p);
  const gy = program.tensor(y.shape, "gy");
  const gx = patchifyBackward(program, gy, x.shape, p);
  program.keep(y, gx);
  const [yv, gxv] = await run(program, [[x, f("input")], [gy, f("grad_output")]], [y, gx]);
  if (y.shape.join() !== fixture.shape("patchify.output").join()) throw new Error(`[${y.shape}]`);
  assertClose(yv, f("output"), { ...exact, label: "output" });
  assertClose(gxv, f("grad_input"), { ...exact, label: "grad_input" });
  program.destroy();
});

// Odd sizes: 2×2 patches of 3 channels on a 6×4 image, 5 tokens of width 3, one sample.
Deno.test("token kernels' gradients agree with finite differences", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "token gradcheck");
  const images = program.tensor([1, 3, 6, 4], "images");
  const patches = patchify(program, images, 2); // [1, 6, 12]
  const pos = program.tensor([1, 7, 12], "pos");
  const cls = program.tensor([12], "cls");
  const withPos = addPositions(program, patches, pos, 1);
  const tokens = prependClassToken(program, withPos, cls, pos); // [1, 7, 12]
  const index = program.tensor([1, 5], "index", "u32");
  const picked = gatherTokens(program, tokens, index);
  const r = program.tensor(picked.shape, "r");
  program.keep(picked);
  const gradPos = program.tensor(pos.shape, "gpos");
  const gradCls = program.tensor(cls.shape, "gcls");
  program.clear(gradPos);
  program.clear(gradCls);
  const gTokens = scatterTokens(program, r, index, 7);
  const gWithPos = prependClassTokenBackward(program, gTokens, gradCls, gradPos);
  addPositionsBackward(program, gWithPos, gradPos, 1);
  const gImages = patchifyBackward(program, gWithPos, images.shape, 2);
  program.keep(gImages);
  const values = { images: randn(72, 1), pos: randn(84, 2), cls: randn(12, 3), r: randn(60, 4) };
  gpu.write(index, Uint32Array.from([6, 0, 2, 5, 3]));
  gpu.write(r, values.r);
  const loss = async (name: "images" | "pos" | "cls", v: Float32Array<ArrayBuffer>) => {
    const inputs = { ...values, [name]: v };
    const [y] = await run(
      program,
      [[images, inputs.images], [pos, inputs.pos], [cls, inputs.cls]],
      [picked],
    );
    return dot(values.r, y);
  };
  const [gi, gp, gc] = await run(program, [[images, values.images], [pos, values.pos], [
    cls,
    values.cls,
  ]], [
    gImages,
    gradPos,
    gradCls,
  ]);
  await checkGradient("token path images", (v) => loss("images", v), values.images.slice(), gi);
  await checkGradient("token path positions", (v) => loss("pos", v), values.pos.slice(), gp);
  await checkGradient("token path class token", (v) => loss("cls", v), values.cls.slice(), gc);
  program.destroy();
});

Deno.test("sine-cosine positions equal MAE's get_2d_sincos_pos_embed", () => {
  const dim = fixture.get("sincos.dim")[0];
  const grid = fixture.get("sincos.grid")[0];
  assertClose(sincosPositions(dim, grid), fixture.get("sincos.output"), {
    atol: 1e-7,
    rtol: 1e-6,
    label: "positions",
  });
});
