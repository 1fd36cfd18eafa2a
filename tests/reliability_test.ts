// Reliability of the command-line tasks (issue 7): one process per run folder, every input
// checked before the first step, nothing overwritten, every stop clean, honest metrics, and
// one line — never a stack trace — for every file-system failure.
// deno-lint-ignore no-import-prefix
import { Image } from "npm:imagescript@1.3.1";
import {
  type Checkpoint,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
} from "../src/checkpoint.ts";
import { textEncoderConfig, textSmallDefault } from "../src/methods/_text.ts";
import { Program } from "../src/gpu/gpu.ts";
import { recordLossSum } from "../src/loss/loss_sum.ts";
import { renderPlot } from "../src/plot.ts";
import { pretrain } from "../src/train.ts";
import { RunFolder } from "../src/run_folder.ts";
import { assertEquals } from "./_assert.ts";
import {
  assertOneLineError,
  exists,
  type Result,
  root,
  task,
  type TaskOptions,
  tiny,
  tinyConfig,
  waitFor,
} from "./_cli.ts";
import { randn, testGpu } from "./_util.ts";

const linux = Deno.build.os === "linux";

/** Whether this machine lets a test mount file systems of its own (a user namespace). */
const canMount = linux && await succeeds("unshare", ["-rm", "true"]);

/**
 * How to run a task as a user whom file permissions bind: as is when not root; as root,
 * inside a user namespace where this process is user 1000, without root's privileges.
 */
const unprivileged: TaskOptions | undefined = Deno.uid() !== 0
  ? {}
  : linux && await succeeds("unshare", ["-U", "--map-user=1000", "--map-group=1000", "true"])
  ? { prefix: ["unshare", "-U", "--map-user=1000", "--map-group=1000"] }
  : undefined;

async function succeeds(command: string, args: string[]): Promise<boolean> {
  try {
    const { code } = await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
      .output();
    return code === 0;
  } catch {
    return false;
  }
}

/**
 * Runs a task with a tmpfs mounted at `dir` (mount options `options`, e.g. "ro" or
 * "size=256k"), in a mount namespace of its own; stdout ends with the files left in `dir`.
 */
function withMount(options: string, dir: string): TaskOptions {
  const script = 'mount -t tmpfs -o "$1" none "$2" || exit 97; d=$2; shift 2; "$@"; c=$?; ' +
    'find "$d" -mindepth 1 -printf "%P\\n"; exit $c';
  return { prefix: ["unshare", "-rm", "sh", "-c", script, "sh", options, dir] };
}

/** The records of a run's metrics.jsonl. */
async function metrics(run: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(`${run}/metrics.jsonl`).catch(() => "");
  return text.split("\n").filter((line) => line).map((line) => JSON.parse(line));
}

async function hasStep(run: string): Promise<boolean> {
  return (await metrics(run)).some((record) => record.type === "step");
}

let shared: Promise<{ dir: string; run: string; checkpoint: string; result: Result }>;

/** A one-epoch run with evaluation, trained once for the tests that need a checkpoint. */
function trained() {
  shared ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "selfsup_reliability_" });
    const result = await task("pretrain", [
      ...tiny,
      ...["--epochs", "1", "--probe-epochs", "1", "--no-baseline", "--out", `${dir}/run`],
    ]);
    if (result.code !== 0) throw new Error(`training the shared run failed:\n${result.stderr}`);
    return { dir, run: `${dir}/run`, checkpoint: `${dir}/run/checkpoint.safetensors`, result };
  })();
  return shared;
}

async function sameBytes(a: string, b: Uint8Array): Promise<boolean> {
  const bytes = await Deno.readFile(a);
  return bytes.length === b.length && bytes.every((x, i) => x === b[i]);
}

// 1. Overwriting

Deno.test("embed refuses an existing output without --force and never writes over its checkpoint", async () => {
  const { dir, checkpoint } = await trained();
  const original = await Deno.readFile(checkpoint);
  const embed = (out: string, ...more: string[]) =>
    task("embed", ["--checkpoint", checkpoint, "--out", out, "--limit", "4", ...more]);
  assertOneLineError(await embed(checkpoint), "is the checkpoint being read");
  assertOneLineError(await embed(checkpoint, "--force"), "is the checkpoint being read");
  // The same file reached through a linked folder is still the checkpoint.
  await Deno.symlink(`${dir}/run`, `${dir}/linked`);
  const alias = `${dir}/linked/checkpoint.safetensors`;
  assertOneLineError(await embed(alias, "--force"), "is the checkpoint being read");
  assertEquals(await sameBytes(checkpoint, original), true, "checkpoint untouched");

  await Deno.writeTextFile(`${dir}/kept.safetensors`, "earlier work");
  assertOneLineError(await embed(`${dir}/kept.safetensors`), "exists: pass --force");
  assertEquals(await Deno.readTextFile(`${dir}/kept.safetensors`), "earlier work", "kept");
  const forced = await embed(`${dir}/kept.safetensors`, "--force");
  assertEquals(forced.code, 0, `--force: ${forced.stderr}`);
  assertEquals((await Deno.stat(`${dir}/kept.safetensors`)).size > 100, true, "replaced");
  assertOneLineError(await embed(dir, "--force"), "is a folder: name a file");
});

// 2. One process per run folder

Deno.test("a new run refuses a folder whose files it would overwrite, unless they are a run's that failed early", async () => {
  const dir = await Deno.makeTempDir();
  const log = () => {};
  await Deno.writeTextFile(`${dir}/config.json`, `{"mine":1}`);
  await Deno.writeTextFile(`${dir}/summary.json`, "mine");
  await Deno.writeTextFile(`${dir}/notes.txt`, "mine");
  let refused = "";
  await RunFolder.open(dir, { resume: false, log }).catch((e) => (refused = e.message));
  assertEquals(
    refused,
    `${dir} holds config.json, summary.json that a run would overwrite, and no selfsup run: choose another --out`,
  );
  assertEquals(await Deno.readTextFile(`${dir}/config.json`), `{"mine":1}`, "config kept");
  // A run that stopped before its first checkpoint left its config.json: its folder is reused.
  await Deno.writeTextFile(`${dir}/config.json`, `{"method":{"name":"simclr"},"dataset":{}}`);
  await Deno.remove(`${dir}/summary.json`);
  const reused = await RunFolder.open(dir, { resume: false, log });
  await reused.close();
  // Other files never stop a run.
  await Deno.remove(`${dir}/config.json`);
  await (await RunFolder.open(dir, { resume: false, log })).close();
});

Deno.test("a run folder is held by one process: a second is refused, a dead holder's lock is taken over", async () => {
  const dir = await Deno.makeTempDir();
  const run = `${dir}/run`;
  const first = spawnPretrain([...tiny, "--limit", "256", "--epochs", "40", "--no-probe"], run);
  try {
    await waitFor(() => hasStep(run), "the first run's first step");
    const holder = (await Deno.readTextFile(`${run}/run.lock`)).trim();
    assertEquals(holder, String(first.pid), "the lock names its process");
    const second = [...tiny, "--epochs", "1", "--no-probe", "--out", run];
    assertOneLineError(await task("pretrain", second), `in use by process ${first.pid}`);
    assertOneLineError(
      await task("pretrain", ["--resume", run, "--epochs", "1"]),
      `in use by process ${first.pid}`,
    );
    await waitFor(() => exists(`${run}/checkpoint.safetensors`), "the first checkpoint");
  } finally {
    await stop(first);
  }
  assertEquals(await exists(`${run}/run.lock`), true, "a killed process leaves its lock file");
  const resumed = await task("pretrain", ["--resume", run, "--epochs", "1"]);
  assertEquals(resumed.code, 0, `resume: ${resumed.stderr}`);
  assertEquals(
    resumed.stderr.includes(`taking over its lock from process ${first.pid}`),
    true,
    `takeover message: ${resumed.stderr}`,
  );
  assertEquals(await exists(`${run}/run.lock`), false, "a finished run lets its folder go");
});

Deno.test("the deno run child of a killed deno task keeps its run folder", async () => {
  const dir = await Deno.makeTempDir();
  const run = `${dir}/run`;
  const parent = new Deno.Command(Deno.execPath(), {
    args: ["task", "pretrain", ...tiny, "--limit", "256", "--epochs", "40", "--no-probe"]
      .concat(["--out", run]),
    cwd: root,
    stdout: "null",
    stderr: "null",
  }).spawn();
  let trainer = 0;
  try {
    await waitFor(() => hasStep(run), "the first step");
    trainer = Number((await Deno.readTextFile(`${run}/run.lock`)).trim());
    await stop(parent);
    // The trainer is the task's child, still running: it holds the folder.
    assertEquals(trainer !== parent.pid && trainer > 0, true, `lock holder ${trainer}`);
    assertOneLineError(
      await task("pretrain", ["--resume", run, "--epochs", "1"]),
      `in use by process ${trainer}`,
    );
  } finally {
    await stop(parent);
    try {
      if (trainer) Deno.kill(trainer, "SIGKILL");
    } catch {
      // It has ended.
    }
  }
  // Its lock goes with it.
  await waitFor(async () => {
    using file = await Deno.open(`${run}/run.lock`, { read: true, write: true });
    return await file.tryLock(true);
  }, "the trainer to end");
});

/** Starts `pretrain flags… --out run` in the background. */
function spawnPretrain(
  flags: string[],
  run: string,
  stderr: "null" | "piped" = "null",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}tasks/pretrain.ts`, ...flags, "--out", run],
    stdout: "null",
    stderr,
  }).spawn();
}

/** Kills a child this test started, if it still runs, and waits for its end. */
async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // It has ended.
  }
  await child.status;
}

// 3. Everything checked before the first step

Deno.test("evaluation data that cannot be used is refused before training", async () => {
  const dir = await Deno.makeTempDir();
  // The decode cache goes to a folder of the test's own; Deno's own cache stays where it is.
  const cache = { XDG_CACHE_HOME: `${dir}/cache`, DENO_DIR: await denoDir() };
  // An image folder with train/ but neither test/ nor val/: enough images for a step.
  for (const [name, colour] of [["a", 0xff0000ff], ["b", 0x00ff00ff]] as const) {
    await Deno.mkdir(`${dir}/images/train/${name}`, { recursive: true });
    const png = await new Image(8, 8).fill(colour).encode();
    for (let i = 0; i < 8; i++) await Deno.writeFile(`${dir}/images/train/${name}/${i}.png`, png);
  }
  const folder = await task("pretrain", [
    ...tiny,
    ...["--limit", "16", "--epochs", "1", "--dataset", "folder", "--data", `${dir}/images`],
    ...["--out", `${dir}/run`],
  ], { env: cache });
  assertOneLineError(folder, "has train/ but neither test/ nor val/");
  assertEquals(await exists(`${dir}/run`), false, "no run folder left by a refused start");

  // A CIFAR-10 folder without its test batch.
  await cifar10Folder(`${dir}/cifar`, { test: false });
  const cifar = await task("pretrain", [
    ...tiny,
    ...["--epochs", "1", "--dataset", "cifar10", "--data", `${dir}/cifar`, "--out", `${dir}/run`],
  ]);
  assertOneLineError(cifar, "test_batch.bin is missing");
  assertEquals(await exists(`${dir}/run`), false, "nothing trained");
});

/** Where this Deno keeps its cache of modules. */
async function denoDir(): Promise<string> {
  const { stdout } = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  return JSON.parse(new TextDecoder().decode(stdout)).denoDir;
}

/** A CIFAR-10 folder of the right sizes whose images are all black and labelled 0. */
async function cifar10Folder(dir: string, { test }: { test: boolean }): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const names = [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`);
  for (const name of test ? [...names, "test_batch.bin"] : names) {
    using file = await Deno.open(`${dir}/${name}`, { write: true, create: true });
    await file.truncate(10_000 * 3073); // sparse: no disk used
  }
  const classes = "airplane automobile bird cat deer dog frog horse ship truck";
  await Deno.writeTextFile(`${dir}/batches.meta.txt`, classes.replaceAll(" ", "\n") + "\n");
}

// 4. True messages

Deno.test("a non-finite loss before the first checkpoint says that none was saved", async () => {
  const dir = await Deno.makeTempDir();
  const result = await task("pretrain", [
    ...tiny,
    ...["--lr", "1e30", "--epochs", "1", "--no-probe", "--out", `${dir}/run`],
  ]);
  assertOneLineError(result, "no checkpoint was saved yet");
  assertEquals(await exists(`${dir}/run/checkpoint.safetensors`), false, "no checkpoint");
});

Deno.test("the training time excludes evaluation; a too-large k is reported", async () => {
  const { run, result } = await trained();
  const summary = JSON.parse(await Deno.readTextFile(`${run}/summary.json`));
  const epochs = (await metrics(run)).filter((record) => record.type === "epoch");
  const epochSeconds = epochs.reduce((sum, record) => sum + Number(record.seconds), 0);
  if (Math.abs(summary.training_seconds - epochSeconds) > 0.01 * (epochs.length + 1)) {
    throw new Error(`training ${summary.training_seconds} s, epochs ${epochSeconds} s`);
  }
  const line = result.stdout.split("\n").find((l) => l.startsWith("SimCLR done"))!;
  const shown = line.match(/(\d+) steps in (\d+) s/);
  assertEquals(shown?.[2], summary.training_seconds.toFixed(0), `printed: ${line}`);
  assertEquals(
    result.stderr.includes("kNN: k 200 exceeds the 64 training images"),
    true,
    `k note: ${result.stderr}`,
  );
  assertEquals(summary.knn.k, 64, "the k that voted");
});

// 5. File-system failures: one line each

Deno.test("a file where a folder is expected, and back, is one line", async () => {
  const { checkpoint } = await trained();
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/file`, "not a folder");
  await Deno.mkdir(`${dir}/folder`);
  assertOneLineError(
    await task("pretrain", ["--out", `${dir}/file`]),
    "is a file, not a run folder",
  );
  assertOneLineError(await task("pretrain", ["--out", `${dir}/file/run`]), "Not a directory");
  assertOneLineError(await task("pretrain", ["--resume", `${dir}/file`]), "is a file");
  assertOneLineError(
    await task("pretrain", ["--dataset", "folder", "--data", `${dir}/file`, "--out", `${dir}/r`]),
    "is a file, not a folder",
  );
  assertOneLineError(
    await task("probe", ["--checkpoint", `${dir}/folder`]),
    "is a folder, not a file",
  );
  assertOneLineError(
    await task("embed", ["--checkpoint", checkpoint, "--out", `${dir}/file/features`]),
    "no folder",
  );
});

Deno.test({
  name: "a read-only file system is one line, and a resumed run on one is untouched",
  ignore: !canMount,
  async fn() {
    const dir = await Deno.makeTempDir();
    const fresh = await task("pretrain", [...tiny, "--out", `${dir}/run`], withMount("ro", dir));
    assertOneLineError(fresh, "Cannot create the run folder");
    assertOneLineError(fresh, "Read-only file system");
    // A finished run, remounted read-only, then resumed.
    const { run } = await trained();
    const copy = `${dir}/copy`;
    await copyFolder(run, copy);
    const before = await Deno.readFile(`${copy}/checkpoint.safetensors`);
    const script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 97; ' +
      'shift; exec "$@"';
    const resumed = await task("pretrain", ["--resume", copy, "--epochs", "2"], {
      prefix: ["unshare", "-rm", "sh", "-c", script, "sh", copy],
    });
    assertOneLineError(resumed, "Read-only file system");
    assertEquals(await sameBytes(`${copy}/checkpoint.safetensors`, before), true, "untouched");
  },
});

Deno.test({
  name: "permission denied is one line",
  ignore: unprivileged === undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    await Deno.mkdir(`${dir}/locked`);
    await Deno.chmod(`${dir}/locked`, 0o555);
    await Deno.writeTextFile(`${dir}/secret.safetensors`, "x");
    await Deno.chmod(`${dir}/secret.safetensors`, 0o000);
    await Deno.mkdir(`${dir}/closed/a`, { recursive: true });
    await Deno.chmod(`${dir}/closed`, 0o000);
    try {
      assertOneLineError(
        await task("pretrain", [...tiny, "--out", `${dir}/locked/run`], unprivileged),
        "Permission denied",
      );
      assertOneLineError(
        await task("probe", ["--checkpoint", `${dir}/secret.safetensors`], unprivileged),
        "Permission denied",
      );
      assertOneLineError(
        await task(
          "probe",
          ["--random-init", "--dataset", "folder", "--data", `${dir}/closed`],
          unprivileged,
        ),
        "Permission denied",
      );
    } finally {
      await Deno.chmod(`${dir}/locked`, 0o755);
      await Deno.chmod(`${dir}/closed`, 0o755);
    }
  },
});

Deno.test({
  name: "a full disk at a checkpoint is one line and leaves no partial file",
  ignore: !canMount,
  async fn() {
    const dir = await Deno.makeTempDir();
    // Room for config.json and metrics.jsonl, not for the checkpoint (about 580 kB).
    const result = await task("pretrain", [
      ...tiny,
      ...["--epochs", "1", "--no-probe", "--out", `${dir}/run`],
    ], withMount("size=256k", dir));
    assertOneLineError(result, "No space left on device; no checkpoint was saved yet");
    assertEquals(
      result.stdout.split("\n").filter((name) => name.startsWith("run/")).sort(),
      ["run/config.json", "run/metrics.jsonl"],
      "files left",
    );
  },
});

Deno.test({
  name: "a full disk at a metrics record is one line and keeps the checkpoint",
  ignore: !linux,
  async fn() {
    const { run } = await trained();
    const dir = await Deno.makeTempDir();
    await copyFolder(run, `${dir}/run`);
    const before = await Deno.readFile(`${dir}/run/checkpoint.safetensors`);
    // Every write to /dev/full fails with ENOSPC.
    await Deno.remove(`${dir}/run/metrics.jsonl`);
    await Deno.symlink("/dev/full", `${dir}/run/metrics.jsonl`);
    const result = await task("pretrain", ["--resume", `${dir}/run`, "--epochs", "2"]);
    assertOneLineError(result, "metrics.jsonl: No space left on device");
    assertEquals(await sameBytes(`${dir}/run/checkpoint.safetensors`, before), true, "kept");
  },
});

async function copyFolder(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

// 6. Signals

Deno.test("SIGTERM saves a checkpoint at the current step; the next start removes partial files; the plot draws both sessions", async () => {
  const dir = await Deno.makeTempDir();
  const run = `${dir}/run`;
  const flags = [...tiny, "--limit", "256", "--epochs", "12", "--no-probe"];
  const child = spawnPretrain(flags, run, "piped");
  try {
    await waitFor(() => hasStep(run), "the first step");
  } catch (error) {
    await stop(child);
    throw error;
  }
  child.kill("SIGTERM");
  const { code, stderr } = await child.output();
  assertEquals(code, 143, `exit status (${new TextDecoder().decode(stderr)})`);
  const summary = JSON.parse(await Deno.readTextFile(`${run}/summary.json`));
  const saved = await loadCheckpoint(`${run}/checkpoint.safetensors`);
  assertEquals([summary.status, saved.meta.progress.step], ["interrupted", summary.steps], "state");
  assertEquals(saved.meta.progress.done, false, "not done");
  const stepRecords = async () => (await metrics(run)).filter((r) => r.type === "step").length;
  const before = await stepRecords();

  // What a kill in the middle of a write leaves behind: a partial file, a torn log line.
  await Deno.writeTextFile(`${run}/checkpoint.safetensors.4242.tmp`, "partial");
  await Deno.writeTextFile(`${run}/metrics.jsonl`, '{"type":"st', { append: true });
  // One epoch past the one the signal landed in: under load the signal can land after the
  // first epoch's last step, and a resume to that same epoch has no step left to run.
  const epochs = String(saved.meta.progress.epoch + 1);
  const resumed = await task("pretrain", ["--resume", run, "--epochs", epochs]);
  assertEquals(resumed.code, 0, `resume: ${resumed.stderr}`);
  assertEquals(resumed.stderr.includes("removed checkpoint.safetensors.4242.tmp"), true, "said");
  assertEquals(await exists(`${run}/checkpoint.safetensors.4242.tmp`), false, "removed");
  await metrics(run); // throws on a torn line
  assertEquals((await Deno.readTextFile(`${run}/metrics.jsonl`)).endsWith("}\n"), true, "log");
  // The plot after a resume draws the whole run: every loss read of both sessions (7.).
  const after = await stepRecords();
  if (!(before >= 1 && after > before)) throw new Error(`step records: ${before}, then ${after}`);
  const plot = await Deno.readTextFile(`${run}/plot.svg`);
  const path = plot.match(/<path d="([^"]*)"/)?.[1] ?? "";
  assertEquals(path.split(/[ML]/).filter((p) => p).length, after, "a point for every read");
});

// 7. Honest metrics

const quiet = () => {};

Deno.test("loss_accumulate adds every run's loss to the sum, in order", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "loss sum test");
  const loss = program.tensor([1], "loss");
  const sum = recordLossSum(program, loss);
  gpu.write(sum, Float32Array.of(0.25));
  let expected = 0.25;
  for (const value of randn(37, 11, 3)) {
    gpu.write(loss, Float32Array.of(value));
    gpu.submit(program);
    expected = Math.fround(expected + value);
  }
  assertEquals((await gpu.readF32(sum))[0], expected, "float32 sum in submit order");
  program.destroy();
});

Deno.test("the epoch loss is the mean of every step, across interrupts; the plot shows the whole run", async () => {
  const gpu = await testGpu();
  const dir = await Deno.makeTempDir();
  await pretrain(tinyConfig, { out: `${dir}/whole`, gpu, log: quiet });
  // An aborted signal stops a run after one step: four calls train the epoch's four steps,
  // and every step's loss is read and logged.
  const signal = AbortSignal.abort();
  for (let call = 0; call < 4; call++) {
    await pretrain(tinyConfig, { out: `${dir}/steps`, gpu, log: quiet, resume: call > 0, signal });
  }
  const records = await metrics(`${dir}/steps`);
  const steps = records.filter((r) => r.type === "step").map((r) => Number(r.loss));
  assertEquals(steps.length, 4, "every step of the interrupted run read");
  const [split] = records.filter((r) => r.type === "epoch").map((r) => Number(r.loss));
  const [whole] = (await metrics(`${dir}/whole`)).filter((r) => r.type === "epoch").map((r) =>
    Number(r.loss)
  );
  assertEquals(split, whole, "the same epoch loss with and without interrupts");
  const mean = steps.reduce((a, b) => a + b, 0) / steps.length;
  if (!(Math.abs(whole - mean) <= 1e-6 * Math.abs(mean))) {
    throw new Error(`epoch loss ${whole}, mean of its steps ${mean}`);
  }
  const plot = await Deno.readTextFile(`${dir}/steps/plot.svg`);
  const path = plot.match(/<path d="([^"]*)"/)?.[1] ?? "";
  assertEquals(path.split(/[ML]/).filter((p) => p).length, 4, "a point for every session's step");
  assertEquals(plot.includes("top-1 accuracy"), false, "no accuracy panel without evaluation");
});

Deno.test("a plot of one loss sample shows it; a plot without accuracies has no empty panel", () => {
  const one = renderPlot({ title: "t", loss: [[3, 4.2]], accuracies: [] });
  assertEquals(/<circle /.test(one), true, "one sample is drawn as a dot");
  assertEquals(one.includes("top-1 accuracy"), false, "no accuracy panel");
  const bars = renderPlot({ title: "t", loss: [], accuracies: [{ label: "probe", value: 0.5 }] });
  assertEquals(bars.includes("training loss"), false, "no loss panel without a loss");
  assertEquals(bars.includes("top-1 accuracy"), true, "accuracy panel");
});

// 8. Silent acceptance

Deno.test("probe refuses --width or --stem that contradict the checkpoint", async () => {
  const { checkpoint } = await trained();
  assertOneLineError(
    await task("probe", ["--checkpoint", checkpoint, "--width", "8"]),
    "--width 8 contradicts",
  );
  assertOneLineError(
    await task("probe", ["--checkpoint", checkpoint, "--stem", "cifar"]),
    "--stem cifar contradicts",
  );
});

Deno.test("backbone flags a task would ignore are refused", async () => {
  const { checkpoint } = await trained();
  assertOneLineError(
    await task("probe", ["--random-init", "--backbone", "vit", "--width", "8"]),
    "--width is for --backbone resnet18",
  );
  assertOneLineError(
    await task("finetune", ["--random-init", "--backbone", "vit", "--stem", "cifar"]),
    "--stem is for --backbone resnet18",
  );
  assertOneLineError(
    await task("finetune", ["--random-init", "--vit-positions", "sincos"]),
    "--vit-positions is for --backbone vit",
  );
  assertOneLineError(
    await task("finetune", ["--checkpoint", checkpoint, "--width", "8"]),
    `--width is for --random-init: ${checkpoint} has its own backbone`,
  );
});

Deno.test("a damaged checkpoint or run configuration is one line", async () => {
  const { dir, checkpoint } = await trained();
  const good = decodeCheckpoint(await Deno.readFile(checkpoint), checkpoint);
  const damaged = async (name: string, change: (copy: Checkpoint) => Checkpoint) => {
    const copy = { ...good, tensors: new Map(good.tensors) };
    await Deno.writeFile(`${dir}/${name}`, encodeCheckpoint(change(copy)));
    return `${dir}/${name}`;
  };
  // A flipped bit can make a weight NaN: evaluating it would print accuracies of noise.
  const nan = await damaged("nan.safetensors", (copy) => {
    const weight = copy.tensors.get("conv1.weight")!.slice();
    weight[3] = NaN;
    copy.tensors.set("conv1.weight", weight);
    return copy;
  });
  assertOneLineError(
    await task("probe", ["--checkpoint", nan]),
    "is damaged: conv1.weight holds NaN",
  );
  // Data a newer selfsup may know, or a hand edit.
  const unknown = await damaged("unknown.safetensors", (copy) => ({
    ...copy,
    meta: { ...copy.meta, config: { ...copy.meta.config, dataset: { name: "imagenet" } } },
  }));
  assertOneLineError(
    await task("probe", ["--checkpoint", unknown]),
    'Unknown dataset "imagenet": use synthetic,',
  );
  const text = await damaged("text.safetensors", (copy) => ({
    ...copy,
    meta: {
      ...copy.meta,
      architecture: {
        ...copy.meta.architecture,
        backbone: textEncoderConfig("bytes", textSmallDefault),
      },
    },
  }));
  assertOneLineError(
    await task("finetune", ["--checkpoint", text, "--dataset", "synthetic", "--out", `${dir}/ft`]),
    "holds a text encoder: fine-tuning trains an image classifier",
  );
  assertEquals(await exists(`${dir}/ft`), false, "no run folder left by the refused start");
  await Deno.mkdir(`${dir}/resumable`);
  await Deno.copyFile(checkpoint, `${dir}/resumable/checkpoint.safetensors`);
  const saved = JSON.parse(await Deno.readTextFile(`${dir}/run/config.json`));
  const imagenet = JSON.stringify({ ...saved, dataset: { name: "imagenet" } });
  for (const config of ["5", "null", "{}", '{"dataset": {}}', imagenet]) {
    await Deno.writeTextFile(`${dir}/resumable/config.json`, config);
    assertOneLineError(
      await task("pretrain", ["--resume", `${dir}/resumable`, "--epochs", "2"]),
      config === imagenet ? 'Unknown dataset "imagenet"' : "is not a run's configuration",
    );
  }
  // Fields a hand-edited config.json may spoil, each named as its flag.
  for (
    const [field, value, message] of [
      ["seed", -1, "--seed must be a whole number"],
      ["seed", null, "--seed must be a whole number"],
      ["schedule", "linear", "--schedule must be cosine or constant"],
      ["precision", "f8", "--precision must be f32 or f16"],
    ] as const
  ) {
    await Deno.writeTextFile(
      `${dir}/resumable/config.json`,
      JSON.stringify({ ...saved, [field]: value }),
    );
    assertOneLineError(
      await task("pretrain", ["--resume", `${dir}/resumable`, "--epochs", "2"]),
      message,
    );
  }
});

Deno.test("a single class, the other CIFAR and a --data path that does not exist are refused", async () => {
  const dir = await Deno.makeTempDir();
  await cifar10Folder(`${dir}/cifar10`, { test: true });
  const run = ["--out", `${dir}/run`];
  assertOneLineError(
    await task("pretrain", [...tiny, "--dataset", "cifar10", "--data", `${dir}/cifar10`, ...run]),
    "training images have 1 class (airplane)",
  );
  // An unlabelled corpus is one class too: the run says how to train without evaluating.
  const lines = Array.from({ length: 40 }, (_, i) => `Sentence ${i} is here. It has a sequel.`);
  await Deno.writeTextFile(`${dir}/corpus.txt`, lines.join("\n\n"));
  assertOneLineError(
    await task("pretrain", [
      ...["--method", "mlm", "--dataset", "text", "--data", `${dir}/corpus.txt`, ...run],
    ]),
    "training texts have 1 class (text); a probe or kNN accuracy needs at least two classes; --no-probe",
  );
  assertOneLineError(
    await task("probe", ["--random-init", "--dataset", "cifar10", "--data", `${dir}/cifar10`]),
    "1 class (airplane)",
  );
  assertOneLineError(
    await task("pretrain", [...tiny, "--dataset", "cifar100", "--data", `${dir}/cifar10`, ...run]),
    "holds CIFAR-10, not CIFAR-100: use --dataset cifar10",
  );
  await Deno.mkdir(`${dir}/cifar100`);
  for (const name of ["train.bin", "test.bin", "fine_label_names.txt"]) {
    await Deno.writeFile(`${dir}/cifar100/${name}`, new Uint8Array());
  }
  assertOneLineError(
    await task("pretrain", [...tiny, "--dataset", "cifar10", "--data", `${dir}/cifar100`, ...run]),
    "holds CIFAR-100, not CIFAR-10: use --dataset cifar100",
  );
  await Deno.writeFile(`${dir}/cifar-10-binary.tar.gz`, new Uint8Array());
  assertOneLineError(
    await task("probe", [
      ...["--random-init", "--dataset", "cifar100", "--data", `${dir}/cifar-10-binary.tar.gz`],
    ]),
    "holds CIFAR-10, not CIFAR-100",
  );
  assertOneLineError(
    await task("pretrain", [...tiny, "--dataset", "cifar10", "--data", `${dir}/typo`, ...run]),
    "does not exist",
  );
  assertEquals([await exists(`${dir}/typo`), await exists(`${dir}/run`)], [false, false], "made");
  const help = await task("pretrain", ["--help"]);
  assertEquals(help.stdout.includes("an existing folder"), true, `--help: ${help.stdout}`);
});
