import { loadCheckpoint } from "../src/checkpoint.ts";
import { SelfsupError } from "../src/errors.ts";
import { presetConfig } from "../src/presets.ts";
import { pretrain, type PretrainConfig } from "../src/train.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
import { testGpu } from "./_util.ts";

const tiny: PretrainConfig = {
  ...presetConfig("default"),
  method: { name: "simclr", temperature: 0.2, projectionDim: 8 },
  dataset: { name: "synthetic", limit: 64 },
  backbone: { name: "resnet18", stem: "imagenet", width: 4 },
  batchSize: 16,
  epochs: 2,
  workers: 1,
  evaluation: null,
  baseline: false,
};
const quiet = () => {};

Deno.test("a run resumed from its epoch-1 checkpoint ends bit-identical to an uninterrupted one", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  await pretrain(tiny, { out: `${dir}/whole`, gpu, log: quiet });
  await pretrain({ ...tiny, epochs: 1 }, { out: `${dir}/split`, gpu, log: quiet });
  const summary = await pretrain(tiny, { out: `${dir}/split`, gpu, resume: true, log: quiet });
  assertEquals([summary.status, summary.steps], ["done", 8], "resumed run");
  const whole = await loadCheckpoint(`${dir}/whole/checkpoint.safetensors`);
  const split = await loadCheckpoint(`${dir}/split/checkpoint.safetensors`);
  for (const [name, values] of whole.tensors) {
    assertEquals(Array.from(split.tensors.get(name)!).join(), Array.from(values).join(), name);
  }
  for (const [state, byName] of whole.optimizerState) {
    for (const [name, values] of byName) {
      const other = split.optimizerState.get(state)!.get(name)!;
      assertEquals(Array.from(other).join(), Array.from(values).join(), `${state} of ${name}`);
    }
  }
});

Deno.test("a non-finite loss stops the run and keeps the last good checkpoint", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  await pretrain({ ...tiny, epochs: 1 }, { out: `${dir}/run`, gpu, log: quiet });
  const good = await Deno.readFile(`${dir}/run/checkpoint.safetensors`);
  // An absurd learning rate sends the parameters to infinity within a step or two.
  await assertRejects(
    () =>
      pretrain({ ...tiny, learningRate: 1e38 }, {
        out: `${dir}/run`,
        gpu,
        resume: true,
        log: quiet,
      }),
    SelfsupError,
    "keeps the last good state",
  );
  const after = await Deno.readFile(`${dir}/run/checkpoint.safetensors`);
  assertEquals(
    after.length === good.length && after.every((b, i) => b === good[i]),
    true,
    "same file",
  );
  assertEquals(
    (await loadCheckpoint(`${dir}/run/checkpoint.safetensors`)).meta.progress.epoch,
    1,
    "epoch",
  );
});
