// Masked language modelling: a whole first step (with next-sentence prediction) against
// PyTorch (tests/fixtures/make_text_fixtures.py), a run resumed mid-epoch ending bit-identical
// to an uninterrupted one, and what a run refuses.
import { syntheticText } from "../src/data/synthetic_text.ts";
import { ListTextDataset } from "../src/data/text.ts";
import {
  packCorpus,
  predictionsPerSequence,
  type TextViews,
  TokenWriter,
} from "../src/data/text_batcher.ts";
import { tokenizerNamed } from "../src/data/tokenizer.ts";
import { SelfsupError } from "../src/errors.ts";
import { Program } from "../src/gpu/gpu.ts";
import { textEncoderConfig, type TextEncoderShape } from "../src/methods/_text.ts";
import { createStepInputs, writeStepInputs } from "../src/methods/method.ts";
import { mlm, type MlmOptions } from "../src/methods/mlm.ts";
import { createOptimizer } from "../src/optim/optimizer.ts";
import { presetConfig } from "../src/presets.ts";
import { pretrain, type PretrainConfig } from "../src/train.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
import { assertResumesBitIdentical } from "./_resume.ts";
import { compare, compareLoss, initialize, load } from "./_method_step.ts";
import { assertClose, testGpu } from "./_util.ts";
import { mlmSteps } from "./_mlm_steps.ts";

/** The bidirectional, mean-pooled byte encoder a text fixture's metadata describes. */
const fixtureShape = (meta: Record<string, number>): TextEncoderShape => ({
  contextLength: meta.length,
  dim: meta.dim,
  depth: meta.depth,
  heads: meta.heads,
  causal: false,
  pooling: "mean",
});

Deno.test("MLM first step with next-sentence prediction matches PyTorch", async () => {
  const gpu = await testGpu();
  const fixture = await load("mlm_step1");
  const meta = fixture.meta as Record<string, number> & { sgd: Record<string, number> };
  // The batch the fixture was made from, as selfsup's writer makes it.
  const views: TextViews = {
    tokenizer: "bytes",
    sequenceLength: meta.length,
    masking: { ratio: 0.3, mode: "static" },
    pairs: true,
  };
  const corpus = new ListTextDataset(
    [["Ada.", "Bo ran.", "Cy.", "Di hid."], ["Ed.", "Flo.", "Gus sat.", "Hal."]],
    Int32Array.of(0, 1),
    ["a", "b"],
  );
  const writer = new TokenWriter(packCorpus(corpus, tokenizerNamed("bytes"), views), views, 0);
  const batch = writer.allocate(4);
  writer.write([0, 1, 2, 3], 0, batch);
  const same = (name: string, values: ArrayLike<number>) =>
    assertEquals(Array.from(values), Array.from(fixture.get(name)), `the fixture's ${name}`);
  same("tokens", batch.tokens);
  same("segments", batch.segments);
  same("positions", batch.positions);
  same("targets", batch.targets);
  same("is_next", batch.isNext);

  const options = mlm.validate({ maskRatio: 0.3, masking: "static", nsp: true }, 4);
  const encoder = textEncoderConfig("bytes", fixtureShape(meta));
  const backbone = mlm.backbone!(options, encoder);
  const run = mlm.build(
    { gpu, backbone, batchSize: 4, totalSteps: 10, stepsPerEpoch: 10, seed: 0 },
    options,
  );
  initialize(run.trainable, [
    { strip: "backbone.", take: (n) => n.startsWith("backbone.") },
    { strip: "", take: (n) => !n.startsWith("backbone.") },
  ]);
  const optimizer = createOptimizer(gpu, run.trainable, {
    name: "sgd",
    momentum: meta.sgd.momentum,
    weightDecay: meta.sgd.weightDecay,
  });
  const program = new Program(gpu, "MLM first step");
  const inputs = createStepInputs(program, {
    groups: [],
    text: mlm.text!(options, encoder),
    batchSize: 4,
  });
  program.clear(run.trainable.grads);
  const { loss } = run.record(program, inputs);
  optimizer.record(program);
  writeStepInputs(gpu, inputs, {
    groups: [],
    labels: new Int32Array(4),
    indices: Int32Array.of(0, 1, 2, 3),
    size: 4,
    epoch: 0,
    step: 0,
    text: batch,
  });
  optimizer.prepare(1, meta.sgd.lr);
  gpu.submit(program);
  compareLoss(fixture, (await gpu.readF32(loss))[0]);
  compare(fixture, "grad", await run.trainable.readGrads());
  compare(fixture, "after", await run.trainable.read());
  program.destroy();
  optimizer.destroy();
  run.destroy();
});

Deno.test("twelve MLM steps with AdamW, warm-up and cosine match PyTorch step by step", async () => {
  const gpu = await testGpu();
  const fixture = await load("mlm_steps");
  const meta = fixture.meta as Record<string, number> & {
    adamw: { lr: number; betas: [number, number]; weightDecay: number; warmupSteps: number };
  };
  const losses = fixture.get("losses"), tokens = fixture.get("tokens");
  const steps = losses.length;
  const run = await mlmSteps(gpu, {
    shape: fixtureShape(meta),
    batchSize: tokens.length / steps / meta.length,
    tokens,
    positions: fixture.get("positions"),
    targets: fixture.get("targets"),
    steps,
    totalSteps: steps,
    ...meta.adamw,
  }, (s, loss) =>
    assertClose([loss], [losses[s]], {
      atol: 4 * fixture.get("losses_f32err")[s] + 1e-5,
      rtol: 0,
      label: `loss of step ${s + 1}`,
    }));
  compare(fixture, "after", await run.trainable.read());
  run.destroy();
});

const tinyEncoder = textEncoderConfig("bytes", {
  contextLength: 32,
  dim: 16,
  depth: 1,
  heads: 2,
  causal: false,
  pooling: "mean",
});

const tinyOptions: MlmOptions = { ...mlm.defaults, nsp: true };

/** A small MLM run on the synthetic corpus: 40 documents, a width-16 encoder of 32 tokens. */
const tiny: PretrainConfig = {
  ...presetConfig("default", "mlm"),
  method: { name: "mlm", ...tinyOptions },
  dataset: { name: "synthetic-text", limit: 40 },
  backbone: tinyEncoder,
  batchSize: 8,
  epochs: 2,
  evaluation: null,
  baseline: false,
};

/** MLM's evaluation with a one-epoch probe: what a test of the evaluation needs. */
const quickEvaluation = (() => {
  const defaults = presetConfig("default", "mlm").evaluation!;
  return { ...defaults, probe: { ...defaults.probe!, epochs: 1 } };
})();

Deno.test("an MLM run resumed mid-epoch ends bit-identical to an uninterrupted one", async () => {
  // An epoch goes through the corpus's sentence pairs packed into 32-token sequences.
  const text = mlm.text!(tinyOptions, tinyEncoder);
  const corpus = syntheticText({ count: tiny.dataset.limit });
  const sequences = packCorpus(corpus, tokenizerNamed("bytes"), text).blocks.length;
  const perEpoch = Math.floor(sequences / tiny.batchSize);
  if (perEpoch < 4) throw new Error(`only ${perEpoch} steps an epoch`);
  const stop = perEpoch + 2;
  const checkpoint = await assertResumesBitIdentical(
    tiny,
    stop,
    { epoch: 1, batch: 2 },
    sequences,
  );
  // The encoder under bare names, the heads under method.
  for (
    const name of [
      "token_embed.weight",
      "segment_embed.weight",
      "method.head.bias",
      "method.nsp.weight",
    ]
  ) {
    if (!checkpoint.tensors.has(name)) throw new Error(`the checkpoint lacks ${name}`);
  }
  assertEquals(checkpoint.meta.architecture.backbone, { ...tinyEncoder, segments: 2 }, "backbone");
});

Deno.test("MLM with next-sentence pairs measures masked-token accuracy on held-out single sequences", async () => {
  // Sequences of 16 tokens: a pair keeps 13 for text and chooses 2, a single one 14 and 3, so
  // held-out text is masked at other positions per sequence than the training pairs.
  const backbone = { ...tinyEncoder, contextLength: 16 };
  const views = (pairs: boolean) =>
    predictionsPerSequence(
      mlm.text!({ ...mlm.defaults, nsp: pairs }, backbone),
    );
  assertEquals([views(true), views(false)], [2, 3], "chosen per sequence");
  const dir = await Deno.makeTempDir();
  const summary = await pretrain(
    {
      ...tiny,
      backbone,
      epochs: 1,
      evaluation: quickEvaluation,
    },
    { out: `${dir}/run`, gpu: await testGpu(), log: () => {} },
  );
  const { masked_token_accuracy: accuracy, unigram_accuracy: unigram } = summary.method_metrics!;
  for (const value of [accuracy, unigram]) {
    if (!(value >= 0 && value <= 1)) throw new Error(`accuracy ${value}`);
  }
});

Deno.test("MLM trained with the probe off still measures masked-token accuracy on held-out text", async () => {
  const dir = await Deno.makeTempDir();
  const summary = await pretrain(
    { ...tiny, epochs: 1 },
    { out: `${dir}/run`, gpu: await testGpu(), log: () => {} },
  );
  if (summary.probe || summary.knn) throw new Error("evaluated although the probe is off");
  const accuracy = summary.method_metrics?.masked_token_accuracy;
  if (!(accuracy !== undefined && accuracy >= 0 && accuracy <= 1)) {
    throw new Error(`masked-token accuracy ${accuracy}`);
  }
});

Deno.test("MLM refuses images and an image encoder; image methods refuse text, in one line", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  const out = { out: `${dir}/run`, gpu, log: () => {} };
  await assertRejects(
    () => pretrain({ ...tiny, dataset: { name: "synthetic" } }, out),
    SelfsupError,
    "MLM trains on text, and --dataset synthetic holds images",
  );
  await assertRejects(
    () => pretrain({ ...tiny, backbone: { name: "resnet18", stem: "cifar", width: 4 } }, out),
    SelfsupError,
    "MLM needs a text encoder",
  );
  await assertRejects(
    () =>
      pretrain({ ...presetConfig("default", "simclr"), dataset: { name: "synthetic-text" } }, out),
    SelfsupError,
    "SimCLR trains on images",
  );
  await assertRejects(
    () => Promise.resolve().then(() => presetConfig("cifar", "mlm")),
    SelfsupError,
    "--preset cifar is a CIFAR-10 recipe",
  );
});

Deno.test("MLM starts with every weight and table normal at --init-std, and its random-init baseline is that start", async () => {
  const gpu = await testGpu();
  const backbone = mlm.backbone!(tinyOptions, tinyEncoder);
  const context = { gpu, backbone, batchSize: 8, totalSteps: 10, stepsPerEpoch: 10, seed: 3 };
  const start = async (initStd: number) => {
    const run = mlm.build(context, { ...tinyOptions, initStd });
    const values = await run.trainable.read();
    run.destroy();
    return values;
  };
  const bert = await start(0.02);
  const wide = await start(0.5);
  for (const [name, values] of wide) {
    const std = Math.sqrt(values.reduce((sum, v) => sum + v * v, 0) / values.length);
    if (/(norm|bias)/.test(name)) {
      // As the layers make them, whatever the scale.
      assertEquals(Array.from(values), Array.from(bert.get(name)!), name);
    } else {
      // The same draws at 25 times the scale; BERT's 0.02 is the layers' own initialisation.
      assertClose(values, bert.get(name)!.map((v) => 25 * v), { label: name });
      if (values.length >= 256 && Math.abs(std - 0.5) > 0.05) {
        throw new Error(`${name}: std ${std}`);
      }
    }
  }
  // The evaluation's random-init baseline is the method's own start, not the layers' defaults.
  const baseline = async (initStd: number) => {
    const dir = await Deno.makeTempDir();
    const summary = await pretrain(
      {
        ...tiny,
        method: { name: "mlm", ...tinyOptions, initStd },
        epochs: 1,
        evaluation: quickEvaluation,
        baseline: true,
      },
      { out: `${dir}/run`, gpu, log: () => {} },
    );
    return JSON.stringify([summary.baseline?.probe, summary.baseline?.knn]);
  };
  const [small, large] = [await baseline(0.02), await baseline(0.5)];
  if (small === large) throw new Error(`the same baseline at both scales: ${small}`);
});
