import { statOrNull } from "./data/_fs.ts";
import { SelfsupError } from "./errors.ts";
import { writeFileAtomically } from "./io/files.ts";

/**
 * A run's output folder: `config.json`, `metrics.jsonl` (one JSON object a line, appended
 * as training goes), `checkpoint.safetensors`, `summary.json` and `plot.svg`.
 */
export class RunFolder {
  private constructor(readonly path: string, readonly resume: boolean) {}

  get checkpointPath(): string {
    return `${this.path}/checkpoint.safetensors`;
  }

  get configPath(): string {
    return `${this.path}/config.json`;
  }

  /**
   * Checks `path` for a new run (a folder that already holds a run is refused unless
   * `resume` is set, so nothing is overwritten by accident) or for resuming (which needs
   * one). Nothing is created until {@link RunFolder.create}, so a run that fails while
   * loading its data leaves no half-made folder behind.
   */
  static async open(path: string, { resume }: { resume: boolean }): Promise<RunFolder> {
    const run = new RunFolder(path.replace(/\/+$/, "") || ".", resume);
    // A run starts to hold work with its first checkpoint; a folder left by a run that
    // failed before it may be reused.
    const hasRun = (await statOrNull(run.checkpointPath)) !== null;
    if (resume && !hasRun) {
      throw new SelfsupError(`Cannot resume ${path}: it holds no checkpoint.safetensors`);
    }
    if (!resume && hasRun) {
      throw new SelfsupError(
        `${path} already holds a run: pass --resume ${path} to continue it, or choose another --out`,
      );
    }
    return run;
  }

  /** Creates the folder (and its parents) if needed; a new run starts a new metrics log. */
  async create(): Promise<void> {
    try {
      await Deno.mkdir(this.path, { recursive: true });
      if (!this.resume) await Deno.remove(`${this.path}/metrics.jsonl`).catch(() => {});
    } catch (error) {
      throw new SelfsupError(`Cannot create ${this.path}: ${(error as Error).message}`);
    }
  }

  async readConfig<T>(): Promise<T> {
    try {
      return JSON.parse(await Deno.readTextFile(this.configPath)) as T;
    } catch {
      throw new SelfsupError(`Cannot resume ${this.path}: config.json is unreadable`);
    }
  }

  async writeJson(name: string, value: unknown): Promise<void> {
    await writeFileAtomically(`${this.path}/${name}`, JSON.stringify(value, null, 2) + "\n");
  }

  async appendMetrics(record: Record<string, unknown>): Promise<void> {
    await Deno.writeTextFile(`${this.path}/metrics.jsonl`, JSON.stringify(record) + "\n", {
      append: true,
    });
  }

  async writeText(name: string, text: string): Promise<void> {
    await writeFileAtomically(`${this.path}/${name}`, text);
  }
}
