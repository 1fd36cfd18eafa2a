// The command-line tasks on bad input: one clear line, a non-zero exit, nothing overwritten;
// and Ctrl-C, which saves a checkpoint that --resume continues from.
import { loadCheckpoint } from "../src/checkpoint.ts";
import { parseSafetensors } from "../src/io/safetensors.ts";
import { assertEquals } from "./_assert.ts";

const root = new URL("..", import.meta.url).pathname;
// A network that costs little on a software adapter.
const tiny = [
  "--stem",
  "imagenet",
  "--width",
  "4",
  "--limit",
  "64",
  "--batch-size",
  "16",
  "--workers",
  "1",
  "--projection-dim",
  "8",
];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function task(name: string, args: string[]): Promise<Result> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}tasks/${name}.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, stdout: text(stdout), stderr: text(stderr) };
}

/** The failure is one line that names the problem: no stack trace. */
function assertOneLineError(result: Result, includes: string): void {
  if (result.code === 0) throw new Error(`expected a failure, got exit 0: ${result.stdout}`);
  const lines = result.stderr.split("\n").filter((l) => l.trim() && !l.includes("XDG_RUNTIME_DIR"));
  const last = lines.at(-1) ?? "";
  if (!last.includes(includes) || /\n\s+at /.test(result.stderr)) {
    throw new Error(`expected one line with "${includes}", got:\n${result.stderr}`);
  }
}

Deno.test("unknown flags and bad values are refused with one line", async () => {
  assertOneLineError(await task("pretrain", ["--bogus"]), "unknown option '--bogus'");
  assertOneLineError(await task("pretrain", ["--batch-size", "-3"]), "whole number ≥ 1");
  assertOneLineError(await task("pretrain", ["--temperature", "0"]), "number > 0");
  assertOneLineError(await task("pretrain", ["--epochs", "abc"]), "whole number ≥ 1");
  assertOneLineError(await task("pretrain", ["--dataset", "mnist"]), "Allowed choices");
  assertOneLineError(await task("probe", []), "--checkpoint PATH or --random-init");
  assertOneLineError(await task("embed", ["--out", "x.safetensors"]), "--checkpoint");
});

Deno.test("missing or corrupt data and checkpoints are one-line errors", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/cifar-10-batches-bin`);
  for (
    const name of [
      "data_batch_1",
      "data_batch_2",
      "data_batch_3",
      "data_batch_4",
      "data_batch_5",
      "test_batch",
    ]
  ) {
    await Deno.writeFile(`${dir}/cifar-10-batches-bin/${name}.bin`, new Uint8Array(3073 * 3));
  }
  assertOneLineError(
    await task("pretrain", [
      "--dataset",
      "cifar10",
      "--data",
      `${dir}/cifar-10-batches-bin`,
      "--out",
      `${dir}/run`,
    ]),
    "data_batch_1.bin",
  );
  assertOneLineError(
    await task("pretrain", [
      "--dataset",
      "folder",
      "--data",
      `${dir}/no-such-folder`,
      "--out",
      `${dir}/run`,
    ]),
    "no-such-folder",
  );
  await Deno.writeTextFile(`${dir}/garbage.safetensors`, "not a checkpoint at all");
  assertOneLineError(
    await task("probe", ["--checkpoint", `${dir}/garbage.safetensors`]),
    "garbage.safetensors",
  );
  assertOneLineError(
    await task("probe", ["--checkpoint", `${dir}/absent.safetensors`]),
    "no such file",
  );
  // A failed start leaves no run behind to block the next one.
  assertEquals(await exists(`${dir}/run/checkpoint.safetensors`), false, "no checkpoint");
});

Deno.test("a batch too large for the adapter is refused before training", async () => {
  const dir = await Deno.makeTempDir();
  const result = await task("pretrain", [
    "--stem",
    "cifar",
    "--width",
    "64",
    "--batch-size",
    "4096",
    "--out",
    `${dir}/run`,
  ]);
  assertOneLineError(result, "smaller batch");
  assertEquals(await exists(`${dir}/run/checkpoint.safetensors`), false, "no checkpoint");
});

Deno.test("an existing run is not overwritten; a checkpoint of another architecture is refused", async () => {
  const dir = await Deno.makeTempDir();
  const first = await task("pretrain", [
    ...tiny,
    "--epochs",
    "1",
    "--no-probe",
    "--out",
    `${dir}/run`,
  ]);
  assertEquals(first.code, 0, `first run: ${first.stderr}`);
  const before = await Deno.readFile(`${dir}/run/checkpoint.safetensors`);
  const probe = await task("probe", [
    ...["--checkpoint", `${dir}/run/checkpoint.safetensors`, "--epochs", "1", "--k", "5", "--json"],
  ]);
  assertEquals(probe.code, 0, `probe: ${probe.stderr}`);
  const result = JSON.parse(probe.stdout);
  assertEquals([typeof result.probe.top1, typeof result.knn.top1], ["number", "number"], "probe");
  const embed = await task("embed", [
    ...[
      "--checkpoint",
      `${dir}/run/checkpoint.safetensors`,
      "--out",
      `${dir}/features.safetensors`,
    ],
    ...["--split", "train", "--limit", "10"],
  ]);
  assertEquals(embed.code, 0, `embed: ${embed.stderr}`);
  const features = parseSafetensors(await Deno.readFile(`${dir}/features.safetensors`), "features");
  assertEquals(features.tensors.get("features")!.shape, [10, 32], "features [N, 8·width]");
  assertEquals(features.tensors.get("labels")!.shape, [10], "labels");
  assertOneLineError(
    await task("pretrain", [...tiny, "--out", `${dir}/run`]),
    "already holds a run",
  );
  assertOneLineError(
    await task("pretrain", ["--resume", `${dir}/run`]),
    "has finished its 1 epochs",
  );
  assertOneLineError(
    await task("embed", [
      "--checkpoint",
      `${dir}/run/checkpoint.safetensors`,
      "--out",
      `${dir}/no/f.safetensors`,
    ]),
    "no folder",
  );
  assertOneLineError(
    await task("pretrain", ["--resume", `${dir}/run`, "--width", "8"]),
    "drop --width",
  );
  const config = JSON.parse(await Deno.readTextFile(`${dir}/run/config.json`));
  await Deno.writeTextFile(
    `${dir}/run/config.json`,
    JSON.stringify({ ...config, backbone: { ...config.backbone, width: 8 } }),
  );
  assertOneLineError(
    await task("pretrain", ["--resume", `${dir}/run`, "--epochs", "2"]),
    '"width":4',
  );
  assertEquals(
    Array.from(await Deno.readFile(`${dir}/run/checkpoint.safetensors`)).join(),
    Array.from(before).join(),
    "checkpoint untouched",
  );
});

Deno.test("Ctrl-C saves a checkpoint mid-epoch and --resume finishes the run", async () => {
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}tasks/pretrain.ts`,
      ...tiny,
      "--limit",
      "256",
      // Enough epochs that the run cannot finish before the interrupt arrives.
      "--epochs",
      "12",
      "--no-probe",
      "--out",
      `${dir}/run`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Interrupt once the first loss has been logged.
  for (let i = 0; i < 600 && !(await metricsHaveStep(`${dir}/run`)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGINT");
  const { code, stderr } = await child.output();
  const message = new TextDecoder().decode(stderr);
  assertEquals(code, 130, `exit status (${message})`);
  const saved = await loadCheckpoint(`${dir}/run/checkpoint.safetensors`);
  if (saved.meta.progress.done || saved.meta.progress.step < 1) {
    throw new Error(`unexpected progress ${JSON.stringify(saved.meta.progress)}`);
  }
  const resumed = await task("pretrain", ["--resume", `${dir}/run`, "--json"]);
  assertEquals(resumed.code, 0, `resume: ${resumed.stderr}`);
  const summary = JSON.parse(resumed.stdout);
  assertEquals([summary.status, summary.steps], ["done", 12 * 16], "finished with every step");
  // Extending a finished run trains on, and the run folder remembers the new length.
  const extended = await task("pretrain", ["--resume", `${dir}/run`, "--epochs", "13", "--json"]);
  assertEquals(extended.code, 0, `extend: ${extended.stderr}`);
  assertEquals(JSON.parse(extended.stdout).steps, 13 * 16, "steps after extending");
  assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/run/config.json`)).epochs, 13, "config");
});

async function metricsHaveStep(run: string): Promise<boolean> {
  try {
    return (await Deno.readTextFile(`${run}/metrics.jsonl`)).includes('"type":"step"');
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
