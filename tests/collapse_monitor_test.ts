// The collapse monitor through the trainer (issue 8 §5, issue 9 §3): a run whose embeddings
// have collapsed, or whose loss is stuck at a method's collapse value, stops with one line
// and keeps its last checkpoint, which still resumes; a healthy run, and one collapsed read
// alone, do not stop a run. The method's run is the real one with the embeddings (or the
// loss) the collapse monitor sees replaced by values the test writes before each step.
import type { Tensor } from "../src/gpu/tensor.ts";
import type { Method, MethodRun } from "../src/methods/method.ts";
import { simclr } from "../src/methods/simclr.ts";
import { swav } from "../src/methods/swav.ts";
import { SelfsupError } from "../src/errors.ts";
import { pretrain, type PretrainConfig } from "../src/train.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
import { tinyConfig } from "./_cli.ts";
import { checkpointOf, quiet, resume } from "./_resume.ts";
import { randn, testGpu } from "./_util.ts";

// One batch an epoch, so that the trainer reads the loss and the spread after every step
// (it reads them at an epoch's end, otherwise about once a second).
const tiny: PretrainConfig = {
  ...tinyConfig,
  dataset: { name: "synthetic", limit: 16 },
  epochs: 3,
};
const swavConfig: PretrainConfig = {
  ...tiny,
  method: { name: "swav", projectionDim: 8, hiddenDim: 16, prototypes: 12, localCrops: 0 },
};

/** What the test writes, per step, in place of what the method's step produced. */
interface Replaced {
  /** Rows of the embeddings [M, D] the collapse monitor watches (default: the method's). */
  readonly embeddings?: (step: number, rows: number, dims: number) => Float32Array;
  /** The loss (default: the method's). */
  readonly loss?: (step: number) => number;
}

/** `run` with the tensors of `replaced` written by the test in the step after `step` updates. */
function replacing(run: MethodRun, replaced: Replaced): MethodRun {
  const writes: ((step: number) => void)[] = [];
  return {
    ...run,
    record(program, inputs) {
      const step = run.record(program, inputs);
      const input = (like: Tensor, label: string, values: (step: number) => Float32Array) => {
        const tensor = program.tensor(like.shape, label);
        writes.push((s) => program.gpu.write(tensor, values(s) as Float32Array<ArrayBuffer>));
        return tensor;
      };
      const [rows, dims] = step.embeddings.shape;
      const { embeddings, loss } = replaced;
      return {
        loss: loss ? input(step.loss, "test loss", (s) => Float32Array.of(loss(s))) : step.loss,
        embeddings: embeddings
          ? input(step.embeddings, "test embeddings", (s) => embeddings(s, rows, dims))
          : step.embeddings,
      };
    },
    prepare(step) {
      run.prepare(step);
      for (const write of writes) write(step);
    },
  };
}

/** Runs `config` with its method's steps replacing what `replaced` names. */
async function replacedRun(
  // deno-lint-ignore no-explicit-any
  method: Method<any>,
  config: PretrainConfig,
  out: string,
  replaced: Replaced,
) {
  const gpu = await testGpu();
  const build = method.build;
  method.build = (context, options) => replacing(build.call(method, context, options), replaced);
  try {
    return await pretrain(config, { out, gpu, log: quiet });
  } finally {
    method.build = build;
  }
}

/** Rows spread over the sphere: a different random matrix each step. */
const spread = (step: number, rows: number, dims: number) => randn(rows * dims, step + 1);
/** One random row, repeated: every image has the same embedding. */
const identical = (_: number, rows: number, dims: number) => {
  const row = randn(dims, 99);
  return Float32Array.from({ length: rows * dims }, (_, i) => row[i % dims]);
};

/**
 * Asserts the run in `dir` stopped with one line and kept the checkpoint of epoch `kept`
 * (one step an epoch), which resumes.
 */
async function assertStoppedKeeping(
  dir: string,
  config: PretrainConfig,
  error: Error,
  message: string,
  kept: number,
) {
  const lines = error.message.split("\n");
  assertEquals(lines.length, 1, `lines of "${error.message}"`);
  const keeps = `${dir}/run/checkpoint.safetensors keeps the last good state (step ${kept})`;
  for (const part of [message, keeps]) {
    if (!error.message.includes(part)) throw new Error(`"${error.message}" lacks "${part}"`);
  }
  // The checkpoint of the epoch before the stop, complete: the unreplaced method resumes it.
  const { progress } = (await checkpointOf(`${dir}/run`)).meta;
  assertEquals(progress, { epoch: kept, batch: 0, step: kept, done: false, images: 16 }, "kept");
  const summary = await resume(await testGpu(), config, `${dir}/run`);
  assertEquals([summary.status, summary.steps], ["done", 3], "the resumed run");
}

Deno.test("a run whose embeddings collapse stops with one line and keeps its last checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  // Healthy in epoch 1, identical from epoch 2: two collapsed reads in a row stop the run.
  const embeddings = (step: number, rows: number, dims: number) =>
    step === 0 ? spread(step, rows, dims) : identical(step, rows, dims);
  const error = await assertRejects(
    () => replacedRun(simclr, tiny, `${dir}/run`, { embeddings }),
    SelfsupError,
    "The embeddings collapsed by step 3 (epoch 3): their spread is",
  );
  await assertStoppedKeeping(dir, tiny, error, "healthy is about 1/√8 = 0.35", 2);
  assertEquals(error.message.endsWith("Try a lower --lr or other options"), true, "the hint");
});

Deno.test("a healthy run, or one collapsed read alone, is not stopped by the collapse monitor", async () => {
  const dir = await Deno.makeTempDir();
  const healthy = await replacedRun(simclr, tiny, `${dir}/healthy`, { embeddings: spread });
  assertEquals([healthy.status, healthy.steps], ["done", 3], "healthy");
  // The spread it logged is about 1/√8; the monitor read it.
  if (!(healthy.embedding_std! > 0.1)) throw new Error(`spread ${healthy.embedding_std}`);
  const embeddings = (step: number, rows: number, dims: number) =>
    step === 1 ? identical(step, rows, dims) : spread(step, rows, dims);
  const dip = await replacedRun(simclr, tiny, `${dir}/dip`, { embeddings });
  assertEquals([dip.status, dip.steps], ["done", 3], "one collapsed read");
});

Deno.test("SwAV's loss stuck at ln K for an epoch past the first is a collapse: one line, checkpoint kept", async () => {
  const dir = await Deno.makeTempDir();
  const k = swavConfig.method.prototypes as number;
  // Stuck from the start: the first epoch does not count, the whole of the second does.
  const error = await assertRejects(
    () =>
      replacedRun(swav, swavConfig, `${dir}/run`, { embeddings: spread, loss: () => Math.log(k) }),
    SelfsupError,
    "The embeddings collapsed by step 2 (epoch 2)",
  );
  await assertStoppedKeeping(
    dir,
    swavConfig,
    error,
    `the loss is stuck at ${Math.log(k).toFixed(4)}, the value of uniform predictions, ` +
      "for the whole epoch",
    1,
  );
  // What to try, in SwAV's own flags.
  assertEquals(error.message.includes("Try a smaller --epsilon (0.03)"), true, "SwAV's hint");
  // A loss 0.1% off ln K is not stuck.
  const near = await replacedRun(swav, swavConfig, `${dir}/near`, {
    embeddings: spread,
    loss: () => 1.001 * Math.log(k),
  });
  assertEquals([near.status, near.steps], ["done", 3], "a loss near ln K");
  // Nor is one that passes through ln K within an epoch (two steps an epoch: 5% above, then
  // at ln K, where the epoch's last read finds it).
  const twoStepEpochs = { ...swavConfig, dataset: { name: "synthetic", limit: 32 } } as const;
  const passing = await replacedRun(swav, twoStepEpochs, `${dir}/passing`, {
    embeddings: spread,
    loss: (step) => (step % 2 === 0 ? 1.05 : 1) * Math.log(k),
  });
  assertEquals([passing.status, passing.steps], ["done", 6], "a loss passing through ln K");
});
