// Running the command-line tasks from tests: a task as a child process, its result, and the
// project's promise for bad input (one line, a non-zero exit, no stack trace); and the tiny
// run they train, as flags and as a configuration.
import { presetConfig } from "../src/presets.ts";
import type { PretrainConfig } from "../src/train.ts";

/** The repository root, where `deno task` runs. */
export const root = new URL("..", import.meta.url).pathname;

/** Flags for a network that costs little on a software adapter. */
export const tiny = [
  ...["--stem", "imagenet", "--width", "4", "--limit", "64", "--batch-size", "16"],
  ...["--workers", "1", "--projection-dim", "8"],
];

/** The run of {@link tiny}, one epoch of four steps, without evaluation. */
export const tinyConfig: PretrainConfig = {
  ...presetConfig("default"),
  method: { name: "simclr", temperature: 0.2, projectionDim: 8 },
  dataset: { name: "synthetic", limit: 64 },
  backbone: { name: "resnet18", stem: "imagenet", width: 4 },
  batchSize: 16,
  epochs: 1,
  workers: 1,
  evaluation: null,
  baseline: false,
};

/** What a finished task left. */
export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** How to start a task beyond its flags. */
export interface TaskOptions {
  /** A command the task runs under, e.g. `unshare …` (the deno command line is appended). */
  readonly prefix?: readonly string[];
  readonly env?: Record<string, string>;
}

/**
 * The flags each task has been given through {@link taskCommand} in this test file (each
 * test file runs in an isolate of its own), for tests that every documented flag was run.
 */
export const flagsGiven = new Map<string, Set<string>>();

/** `deno run -A tasks/<name>.ts args…`, its stdout and stderr piped. */
export function taskCommand(
  name: string,
  args: string[],
  options: TaskOptions = {},
): Deno.Command {
  const given = flagsGiven.get(name) ?? new Set();
  for (const arg of args) if (arg.startsWith("--")) given.add(arg);
  flagsGiven.set(name, given);
  const [command, ...prefix] = [...(options.prefix ?? []), Deno.execPath()];
  return new Deno.Command(command, {
    args: [...prefix, "run", "-A", `${root}tasks/${name}.ts`, ...args],
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `deno run -A tasks/<name>.ts args…` to its end. */
export async function task(
  name: string,
  args: string[],
  options: TaskOptions = {},
): Promise<Result> {
  const { code, stdout, stderr } = await taskCommand(name, args, options).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, stdout: text(stdout), stderr: text(stderr) };
}

/** The failure is one line that names the problem: no stack trace. */
export function assertOneLineError(result: Result, includes: string): void {
  if (result.code === 0) throw new Error(`expected a failure, got exit 0: ${result.stdout}`);
  const lines = result.stderr.split("\n").filter((l) => l.trim() && !l.includes("XDG_RUNTIME_DIR"));
  const last = lines.at(-1) ?? "";
  if (!last.includes(includes) || /\n\s+at /.test(result.stderr)) {
    throw new Error(`expected one line with "${includes}", got:\n${result.stderr}`);
  }
}

/** Whether something is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `condition` holds: for an event in another process, not for a time. */
export async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}
