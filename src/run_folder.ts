import { SelfsupError } from "./errors.ts";

/**
 * A run's output folder: `config.json`, `metrics.jsonl` (one JSON object a line, appended
 * as training goes), `checkpoint.safetensors`, `summary.json` and `plot.svg`.
 */
export class RunFolder {
  private constructor(readonly path: string) {}

  get checkpointPath(): string {
    return `${this.path}/checkpoint.safetensors`;
  }

  get configPath(): string {
    return `${this.path}/config.json`;
  }

  /**
   * Opens `path` for a new run, creating it; a folder that already holds a run is refused
   * unless `resume` is set, so nothing is overwritten by accident. Resuming needs one.
   */
  static async open(path: string, { resume }: { resume: boolean }): Promise<RunFolder> {
    const run = new RunFolder(path.replace(/\/+$/, "") || ".");
    const hasRun = await exists(run.configPath);
    if (resume && !hasRun) {
      throw new SelfsupError(`Cannot resume ${path}: it holds no run (no config.json)`);
    }
    if (!resume && hasRun) {
      throw new SelfsupError(
        `${path} already holds a run: pass --resume ${path} to continue it, or choose another --out`,
      );
    }
    try {
      await Deno.mkdir(run.path, { recursive: true });
    } catch (error) {
      throw new SelfsupError(`Cannot create ${path}: ${(error as Error).message}`);
    }
    return run;
  }

  async readConfig<T>(): Promise<T> {
    try {
      return JSON.parse(await Deno.readTextFile(this.configPath)) as T;
    } catch {
      throw new SelfsupError(`Cannot resume ${this.path}: config.json is unreadable`);
    }
  }

  async writeJson(name: string, value: unknown): Promise<void> {
    await writeAtomically(`${this.path}/${name}`, JSON.stringify(value, null, 2) + "\n");
  }

  async appendMetrics(record: Record<string, unknown>): Promise<void> {
    await Deno.writeTextFile(`${this.path}/metrics.jsonl`, JSON.stringify(record) + "\n", {
      append: true,
    });
  }

  async writeText(name: string, text: string): Promise<void> {
    await writeAtomically(`${this.path}/${name}`, text);
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

async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(temporary, text);
  await Deno.rename(temporary, path);
}
