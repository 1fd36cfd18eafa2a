// CLIP: its symmetric contrastive loss with a learnable temperature against PyTorch
// (tests/fixtures/make_clip_fixtures.py) and finite differences, and a whole first step.
import { augmentPreset } from "../src/data/augment.ts";
import { syntheticCaptions, syntheticDataset } from "../src/data/synthetic.ts";
import { documentBlocks, type TextViews, TokenWriter } from "../src/data/text_batcher.ts";
import { tokenizerNamed } from "../src/data/tokenizer.ts";
import { Program } from "../src/gpu/gpu.ts";
import { clipLoss } from "../src/loss/clip.ts";
import { textEncoderConfig } from "../src/methods/_text.ts";
import { clip } from "../src/methods/clip.ts";
import { createStepInputs } from "../src/methods/method.ts";
import { createOptimizer } from "../src/optim/optimizer.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
// deno-lint-ignore no-import-prefix
import { Image } from "npm:imagescript@1.3.1";
import { CaptionedLoader, loadCaptionedFolder } from "../src/data/captions.ts";
import { MultiViewLoader } from "../src/data/batcher.ts";
import { SelfsupError } from "../src/errors.ts";
import { compare, compareLoss, initialize, load } from "./_method_step.ts";
import { assertResumesBitIdentical } from "./_resume.ts";
import { presetConfig } from "../src/presets.ts";
import { pretrain, type PretrainConfig } from "../src/train.ts";
import { constant } from "../src/nn/init.ts";
import { Parameter } from "../src/nn/module.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { checkGradient } from "./_gradcheck.ts";
import { assertClose, loadFixtureFile, randn, testGpu } from "./_util.ts";

const fixture = await loadFixtureFile(
  new URL("./fixtures/clip_kernels.safetensors", import.meta.url).pathname,
);

/** CLIP's loss recorded on embeddings [n, e], with the logit scale in a block of its own. */
async function lossCase(n: number, e: number) {
  const gpu = await testGpu();
  const scale = new Parameter([1], "embedding", constant(0));
  const block = new ParameterBlock(gpu, [["logit_scale", scale]]);
  const program = new Program(gpu, "CLIP loss");
  const images = program.tensor([n, e], "images");
  const texts = program.tensor([n, e], "texts");
  program.clear(block.grads);
  const out = clipLoss(program, images, texts, scale);
  program.keep(out.loss, out.gradImages, out.gradTexts);
  const go = async (i: Float32Array, t: Float32Array, s: number) => {
    gpu.write(images, i);
    gpu.write(texts, t);
    gpu.write(scale.value, Float32Array.of(s));
    gpu.submit(program);
    const [loss, gi, gt, gs] = await gpu.read(out.loss, out.gradImages, out.gradTexts, scale.grad);
    return { loss: loss[0], gi: gi as Float32Array, gt: gt as Float32Array, gs: gs[0] };
  };
  return { go, destroy: () => (program.destroy(), block.destroy()) };
}

for (const name of ["loss_initial", "loss_clamped"]) {
  Deno.test(`CLIP's symmetric loss (${name.slice(5)} scale) matches PyTorch`, async () => {
    const f = (key: string) => fixture.get(`${name}.${key}`);
    const c = await lossCase(5, 3);
    const out = await c.go(f("images"), f("texts"), f("logit_scale")[0]);
    assertClose([out.loss], f("loss"), { atol: 1e-5, rtol: 1e-5, label: "loss" });
    assertClose(out.gi, f("grad_images"), { atol: 1e-5, rtol: 1e-4, label: "image gradient" });
    assertClose(out.gt, f("grad_texts"), { atol: 1e-5, rtol: 1e-4, label: "text gradient" });
    assertClose([out.gs], f("grad_logit_scale"), {
      atol: 1e-6,
      rtol: 1e-4,
      label: "scale gradient",
    });
    c.destroy();
  });
}

Deno.test("CLIP's loss agrees with finite differences: both embeddings and the scale (7 pairs of width 5)", async () => {
  const c = await lossCase(7, 5);
  const i0 = randn(35, 1, 0.4), t0 = randn(35, 2, 0.4), s0 = 1.3;
  const base = await c.go(i0, t0, s0);
  await checkGradient("images", async (v) => (await c.go(v, t0, s0)).loss, i0.slice(), base.gi);
  await checkGradient("texts", async (v) => (await c.go(i0, v, s0)).loss, t0.slice(), base.gt);
  await checkGradient(
    "logit scale",
    async (v) => (await c.go(i0, t0, v[0])).loss,
    Float32Array.of(s0),
    [base.gs],
  );
  c.destroy();
});

Deno.test("CLIP first step matches PyTorch: a ResNet-18 and a causal text encoder, projections, the loss", async () => {
  const gpu = await testGpu();
  const fixture = await load("clip_step1");
  const meta = fixture.meta as Record<string, number> & { sgd: Record<string, number> };
  // The captions the fixture was made from, as selfsup's writer makes them.
  const views: TextViews = {
    tokenizer: "bytes",
    sequenceLength: meta.length,
    masking: null,
    pairs: false,
  };
  const { captions } = syntheticCaptions({ count: 8 });
  const writer = new TokenWriter(documentBlocks(captions, tokenizerNamed("bytes")), views, 0);
  const batch = writer.allocate(8);
  writer.write([0, 1, 2, 3, 4, 5, 6, 7], 0, batch);
  assertEquals(Array.from(batch.tokens), Array.from(fixture.get("tokens")), "the fixture's tokens");

  const text = textEncoderConfig("bytes", {
    contextLength: meta.length,
    dim: meta.dim,
    depth: 1,
    heads: 2,
    causal: true,
    pooling: "last",
  });
  const options = clip.validate({ projectionDim: meta.projectionDim }, 8);
  const run = clip.build({
    gpu,
    backbone: { name: "resnet18", stem: "cifar", width: meta.width },
    text,
    batchSize: 8,
    totalSteps: 10,
    stepsPerEpoch: 10,
    seed: 0,
  }, options);
  const part = (prefix: string) => ({ strip: prefix, take: (n: string) => n.startsWith(prefix) });
  initialize(run.trainable, [
    part("backbone."),
    part("text."),
    { strip: "", take: (n) => !n.startsWith("backbone.") && !n.startsWith("text.") },
  ]);
  const optimizer = createOptimizer(gpu, run.trainable, {
    name: "sgd",
    momentum: meta.sgd.momentum,
    weightDecay: meta.sgd.weightDecay,
  });
  const program = new Program(gpu, "CLIP first step");
  const groups = clip.views(options, augmentPreset("eval", 16));
  const inputs = createStepInputs(program, {
    groups,
    text: clip.text!(options, text),
    batchSize: 8,
  });
  program.clear(run.trainable.grads);
  const { loss } = run.record(program, inputs);
  optimizer.record(program);
  gpu.write(inputs.views[0], fixture.get("view1") as Float32Array<ArrayBuffer>);
  gpu.write(inputs.text!.tokens, batch.tokens);
  optimizer.prepare(1, meta.sgd.lr);
  gpu.submit(program);
  compareLoss(fixture, (await gpu.readF32(loss))[0]);
  compare(fixture, "grad", await run.trainable.readGrads());
  compare(fixture, "after", await run.trainable.read());
  program.destroy();
  optimizer.destroy();
  run.destroy();
});

Deno.test("captioned images: the synthetic set in words, a folder of x.png + x.txt, and a caption without its image refused", async () => {
  const { images, captions } = syntheticCaptions({ count: 20 });
  const plain = syntheticDataset({ count: 20 });
  assertEquals(
    Array.from(images.pixels),
    Array.from(plain.pixels),
    "the same images as without captions",
  );
  for (let i = 0; i < 20; i++) {
    const caption = captions.sentences(i)[0];
    if (!caption.includes(images.classNames[images.label(i)])) {
      throw new Error(`caption ${i} "${caption}" does not name its class`);
    }
  }
  // Shapes say their size and place too; textures their colours.
  assertEquals(
    /^a (small|large) \w+ circle on an? \w+ background, /.test(captions.sentences(0)[0]),
    true,
    captions.sentences(0)[0],
  );
  const dir = await Deno.makeTempDir();
  for (const [c, i] of [["cats", 0], ["cats", 1], ["dogs", 2]] as const) {
    await Deno.mkdir(`${dir}/photos/${c}`, { recursive: true });
    const image = new Image(4, 4);
    image.fill(Image.rgbaToColor(40 * i, 200, 30, 255));
    await Deno.writeFile(`${dir}/photos/${c}/${i}.png`, await image.encode());
    await Deno.writeTextFile(`${dir}/photos/${c}/${i}.txt`, `photo ${i}. Second sentence.`);
  }
  const folder = await loadCaptionedFolder(`${dir}/photos`, { height: 8, cacheDir: dir });
  assertEquals([folder.length, folder.height, folder.captions.length], [3, 8, 3], "sizes");
  assertEquals(
    folder.captions.sentences(2),
    ["photo 2.", "Second sentence."],
    "caption of dogs/2.png",
  );
  assertEquals(folder.captions.label(2), folder.label(2), "labels");
  await Deno.writeTextFile(`${dir}/photos/dogs/9.txt`, "an orphan caption");
  await assertRejects(
    () => loadCaptionedFolder(`${dir}/photos`, { height: 8, cacheDir: dir }),
    SelfsupError,
    "dogs/9.txt has no image beside it",
  );
  await Deno.remove(`${dir}/photos/dogs/9.txt`);
  await Deno.remove(`${dir}/photos/cats/1.txt`);
  await assertRejects(
    () => loadCaptionedFolder(`${dir}/photos`, { height: 8, cacheDir: dir }),
    SelfsupError,
    "has no caption",
  );
});

/** A small CLIP run on the synthetic captions: 48 images, width-4 ResNet, width-16 text. */
const tiny: PretrainConfig = {
  ...presetConfig("default", "clip"),
  method: { name: "clip", projectionDim: 8 },
  dataset: { name: "synthetic-captions", limit: 48 },
  backbone: { name: "resnet18", stem: "imagenet", width: 4 },
  text: textEncoderConfig("bytes", {
    contextLength: 64,
    dim: 16,
    depth: 1,
    heads: 2,
    causal: true,
    pooling: "last",
  }),
  batchSize: 8,
  epochs: 2,
  workers: 1,
  evaluation: null,
  baseline: false,
};

Deno.test("a CLIP run resumed mid-epoch ends bit-identical to an uninterrupted one; it refuses images without captions", async () => {
  // 48 images at batch 8: 6 steps an epoch, 12 in all; stopped after the 4th.
  const checkpoint = await assertResumesBitIdentical(tiny, 4, { epoch: 0, batch: 4 });
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  for (const name of ["conv1.weight", "method.text.token_embed.weight", "method.logit_scale"]) {
    if (!checkpoint.tensors.has(name)) throw new Error(`the checkpoint lacks ${name}`);
  }
  assertEquals(checkpoint.meta.architecture.text, tiny.text, "the text encoder's architecture");
  await assertRejects(
    () => pretrain({ ...tiny, dataset: { name: "synthetic" } }, { out: `${dir}/x`, gpu }),
    SelfsupError,
    "CLIP trains on captioned images",
  );
});

Deno.test("the captioned loader gives each image of a batch its own caption", async () => {
  const { images, captions } = syntheticCaptions({ count: 20 });
  const views: TextViews = { tokenizer: "bytes", sequenceLength: 64, masking: null, pairs: false };
  const groups = clip.views(clip.validate({}, 4), augmentPreset("eval", 32));
  const multiView = new MultiViewLoader(images, { batchSize: 4, seed: 1, groups, workers: 0 });
  const loader = new CaptionedLoader(multiView, captions, views, 4);
  const bytes = tokenizerNamed("bytes");
  let checked = 0;
  for await (const batch of loader.epoch(1)) {
    for (let k = 0; k < 4; k++) {
      const i = batch.indices[k];
      const text = bytes.decode(batch.text!.tokens.subarray(64 * k, 64 * (k + 1)));
      const caption = bytes.encode(`${captions.sentences(i)[0]} `).subarray(0, 62);
      const expected = bytes.decode([bytes.cls, ...caption, bytes.sep]);
      if (!text.startsWith(expected)) throw new Error(`image ${i}: "${text}"`);
      checked++;
    }
  }
  assertEquals(checked, 20, "every image");
  loader.close();
});
