// Interrupting a pre-training run at a pinned step, resuming it and comparing it with an
// uninterrupted run, bit for bit: for tests/train_test.ts (SimCLR's schedules and refusals)
// and tests/method_resume_test.ts (every method, on either backbone).
import { type Checkpoint, loadCheckpoint } from "../src/checkpoint.ts";
import type { Gpu } from "../src/gpu/gpu.ts";
import { pretrain, type PretrainConfig, type PretrainSummary } from "../src/train.ts";
import { assertEquals } from "./_assert.ts";
import { assertSameState, testGpu } from "./_util.ts";

export const quiet = () => {};

/**
 * Runs `config` in `out` with an interrupt arriving during its `step`-th training step, as a
 * Ctrl-C would: the run stops after that step and saves a checkpoint there.
 */
export async function interruptedRun(
  gpu: Gpu,
  config: PretrainConfig,
  out: string,
  step: number,
): Promise<PretrainSummary> {
  const interrupt = new AbortController();
  let steps = 0;
  const submit = gpu.submit;
  gpu.submit = (...programs) => {
    const training = programs.some((p) => p.label === "training step");
    if (training && ++steps === step) interrupt.abort();
    submit.apply(gpu, programs);
  };
  try {
    return await pretrain(config, { out, gpu, signal: interrupt.signal, log: quiet });
  } finally {
    gpu.submit = submit;
  }
}

export const checkpointOf = (run: string) => loadCheckpoint(`${run}/checkpoint.safetensors`);

export const resume = (gpu: Gpu, config: PretrainConfig, out: string) =>
  pretrain(config, { out, gpu, resume: true, log: quiet });

// The uninterrupted runs the resumed ones must equal, made once.
const wholeRuns = new Map<string, Promise<Checkpoint>>();

/** The final checkpoint of `config` run from start to end without a stop. */
export function wholeRun(gpu: Gpu, config: PretrainConfig): Promise<Checkpoint> {
  const key = JSON.stringify(config);
  let run = wholeRuns.get(key);
  if (!run) {
    run = Deno.makeTempDir().then(async (dir) => {
      await pretrain(config, { out: `${dir}/whole`, gpu, log: quiet });
      return checkpointOf(`${dir}/whole`);
    });
    wholeRuns.set(key, run);
  }
  return run;
}

/**
 * Interrupts `config` during `step`, checks where it stopped, resumes, and compares the end
 * with an uninterrupted run: every block, state tensor and optimizer state, bit for bit.
 * `items` is what an epoch goes through: the `--limit` images by default, a text run's packed
 * sequences otherwise. Returns the resumed run's checkpoint.
 */
export async function assertResumesBitIdentical(
  config: PretrainConfig,
  step: number,
  stoppedAt: { epoch: number; batch: number },
  items = config.dataset.limit,
): Promise<Checkpoint> {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  const first = await interruptedRun(gpu, config, `${dir}/split`, step);
  assertEquals([first.status, first.steps], ["interrupted", step], "the interrupted run");
  // A mid-epoch checkpoint carries the sum of its epoch's losses so far (reliability_test.ts
  // checks the epoch's mean); one at an epoch's start has none.
  const { lossSum, ...progress } = (await checkpointOf(`${dir}/split`)).meta.progress;
  if (items === undefined) throw new Error("the run needs a --limit: the images it trains on");
  assertEquals(progress, { ...stoppedAt, step, done: false, images: items }, "where it stands");
  const midEpoch = stoppedAt.batch > 0;
  if (midEpoch ? !(Number.isFinite(lossSum) && lossSum! > 0) : lossSum !== undefined) {
    throw new Error(`the loss sum of a checkpoint at batch ${stoppedAt.batch} is ${lossSum}`);
  }
  const summary = await resume(gpu, config, `${dir}/split`);
  // An epoch's batches are whole: the last partial one is dropped.
  const steps = Math.floor(items / config.batchSize) * config.epochs;
  assertEquals([summary.status, summary.steps], ["done", steps], "the resumed run");
  const resumed = await checkpointOf(`${dir}/split`);
  assertSameState(resumed, await wholeRun(gpu, config));
  return resumed;
}
