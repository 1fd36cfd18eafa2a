import { statOrNull } from "./data/_fs.ts";
import { SelfsupError } from "./errors.ts";
import { fileError, isTemporaryName, writeFileAtomically } from "./io/files.ts";

/** The file that marks a run folder as held by a process; it holds that process's id. */
const lockName = "run.lock";

/**
 * A run's output folder: `config.json`, `metrics.jsonl` (one JSON object a line, appended
 * as training goes), `checkpoint.safetensors`, `summary.json` and `plot.svg`. One process
 * at a time holds it (see {@link RunFolder.open}); closing the folder lets it go.
 */
export class RunFolder implements AsyncDisposable {
  #lock: Deno.FsFile | undefined;
  #started = false;

  private constructor(
    readonly path: string,
    readonly resume: boolean,
    lock: Deno.FsFile,
    /** Whether {@link RunFolder.open} made the folder, so that closing it unused removes it. */
    private readonly made: boolean,
  ) {
    this.#lock = lock;
  }

  get checkpointPath(): string {
    return `${this.path}/checkpoint.safetensors`;
  }

  /**
   * Takes `path` for a run. A new run's folder is made if needed; a folder that already
   * holds a run is refused unless `resume` is set (nothing is overwritten by accident), and
   * resuming needs one. The folder is held exclusively until {@link RunFolder.close}: a
   * second process is refused with a one-line error naming the holder, and a hold left by a
   * process that died is taken over, with a message to `log`. Partial files left by a write
   * that a kill cut short (`<name>.<pid>.tmp`) are removed.
   */
  static async open(
    path: string,
    { resume, log }: { resume: boolean; log: (line: string) => void },
  ): Promise<RunFolder> {
    const folder = path.replace(/\/+$/, "") || ".";
    const flag = resume ? "--resume" : "--out";
    const info = await statOrNull(folder).catch((error) => {
      throw fileError("use the run folder", folder, error);
    });
    if (info && !info.isDirectory) {
      throw new SelfsupError(`${path} is a file, not a run folder: choose another ${flag}`);
    }
    if (!info && resume) throw new SelfsupError(`Cannot resume ${path}: no such folder`);
    if (!info) {
      await Deno.mkdir(folder, { recursive: true }).catch((error) => {
        throw fileError("create the run folder", folder, error);
      });
    }
    let lock: Deno.FsFile;
    try {
      lock = await lockFolder(folder, log);
    } catch (error) {
      if (!info) await Deno.remove(folder).catch(() => {});
      throw error;
    }
    const run = new RunFolder(folder, resume, lock, !info);
    try {
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
      if (!resume && info) await refuseOthersFiles(folder, path);
      await run.#removeTemporaries(log);
    } catch (error) {
      await run.close();
      throw error;
    }
    return run;
  }

  /**
   * The `config.json` of the run in `path`, read without taking the folder; the fields named
   * in `sections` must be objects (the rest is checked as a new run's configuration is).
   */
  static async readConfig<T>(path: string, sections: readonly (keyof T & string)[]): Promise<T> {
    const info = await statOrNull(path).catch((error) => {
      throw fileError("resume", path, error);
    });
    if (!info) throw new SelfsupError(`Cannot resume ${path}: no such folder`);
    if (!info.isDirectory) {
      throw new SelfsupError(`Cannot resume ${path}: it is a file, not a run folder`);
    }
    let config: unknown;
    try {
      config = JSON.parse(await Deno.readTextFile(`${path}/config.json`));
    } catch {
      throw new SelfsupError(`Cannot resume ${path}: its config.json is missing or unreadable`);
    }
    const object = (value: unknown) => typeof value === "object" && value !== null;
    if (!object(config) || !sections.every((name) => object((config as T)[name]))) {
      throw new SelfsupError(`Cannot resume ${path}: its config.json is not a run's configuration`);
    }
    return config as T;
  }

  /**
   * Called as training starts: a new run starts a new metrics log; a resumed one loses the
   * last line if a kill cut it short, so that the next record starts on a line of its own.
   * Either way the log is opened for writing, so a log that cannot be written stops the run
   * before its first step.
   */
  async start(): Promise<void> {
    this.#started = true;
    const path = `${this.path}/metrics.jsonl`;
    try {
      using file = await Deno.open(path, {
        read: true,
        write: true,
        create: true,
        truncate: !this.resume,
      });
      if (this.resume) await dropTornLine(file);
    } catch (error) {
      throw fileError("write", path, error);
    }
  }

  async writeJson(name: string, value: unknown): Promise<void> {
    await writeFileAtomically(`${this.path}/${name}`, JSON.stringify(value, null, 2) + "\n");
  }

  async appendMetrics(record: Record<string, unknown>): Promise<void> {
    const path = `${this.path}/metrics.jsonl`;
    await Deno.writeTextFile(path, JSON.stringify(record) + "\n", { append: true }).catch(
      (error) => {
        throw fileError("write", path, error);
      },
    );
  }

  /** Every record of `metrics.jsonl`, over all the sessions of the run. */
  async readMetrics(): Promise<Record<string, unknown>[]> {
    const path = `${this.path}/metrics.jsonl`;
    const text = await Deno.readTextFile(path).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return "";
      throw fileError("read", path, error);
    });
    // A line a kill or a full disk cut short is left out.
    return text.split("\n").flatMap((line) => {
      try {
        const record = JSON.parse(line);
        return typeof record === "object" && record !== null ? [record] : [];
      } catch {
        return [];
      }
    });
  }

  /** Writes a file of the run (text or bytes) atomically. */
  async writeText(name: string, text: string | Uint8Array): Promise<void> {
    await writeFileAtomically(`${this.path}/${name}`, text);
  }

  /**
   * Lets the folder go: the lock file is removed, and a folder this run made and never
   * started training in is removed again, so a failed start leaves nothing behind.
   */
  async close(): Promise<void> {
    const lock = this.#lock;
    if (!lock) return;
    this.#lock = undefined;
    // Removed while still held: a process waiting on this file then sees it gone and retries.
    await Deno.remove(`${this.path}/${lockName}`).catch(() => {});
    lock.close();
    if (this.made && !this.#started) await Deno.remove(this.path).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #removeTemporaries(log: (line: string) => void): Promise<void> {
    // Held exclusively, so no write of this folder is under way: any staged file is stale.
    for await (const entry of Deno.readDir(this.path)) {
      if (!entry.isFile || !isTemporaryName(entry.name)) continue;
      await Deno.remove(`${this.path}/${entry.name}`).catch((error) => {
        throw fileError("remove", `${this.path}/${entry.name}`, error);
      });
      log(`${this.path}: removed ${entry.name}, the partial write of a run that was killed`);
    }
  }
}

/**
 * Takes the run folder's lock file: created with create-new and holding this process's id,
 * and locked (flock) for as long as the process holds it. The operating system releases
 * that lock when its process dies, however it dies, so a lock file that can be locked was
 * left by a dead process and is taken over.
 */
async function lockFolder(folder: string, log: (line: string) => void): Promise<Deno.FsFile> {
  const path = `${folder}/${lockName}`;
  // A retry follows only a holder's removing the file in between; a few always suffice.
  for (let attempt = 0; attempt < 5; attempt++) {
    let file: Deno.FsFile;
    let found = false;
    try {
      file = await Deno.open(path, { read: true, write: true, createNew: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) {
        throw fileError("write in the run folder", folder, error);
      }
      const existing = await Deno.open(path, { read: true, write: true }).catch((error) => {
        if (error instanceof Deno.errors.NotFound) return null;
        throw fileError("open", path, error);
      });
      if (!existing) continue;
      file = existing;
      found = true;
    }
    try {
      if (!await file.tryLock(true)) {
        const owner = await readOwner(file);
        throw new SelfsupError(
          `${folder} is in use by ${owner ? `process ${owner}` : "another process"}: a run ` +
            `folder takes one process at a time; wait for it to end or stop it`,
        );
      }
      // A holder removes the file as it ends; locking the removed file would hold nothing.
      const [held, named] = [await file.stat(), await statOrNull(path)];
      if (!named || held.ino !== named.ino || held.dev !== named.dev) {
        file.close();
        continue;
      }
      const previous = found ? await readOwner(file) : "";
      if (previous) {
        log(`${folder}: taking over its lock from process ${previous}, which is no longer running`);
      }
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
      return file;
    } catch (error) {
      file.close();
      throw fileError("lock", path, error);
    }
  }
  throw new SelfsupError(`Cannot lock ${path}: other processes keep replacing it`);
}

/** Cuts the last line of a log if a kill left it without its newline; reads only the tail. */
async function dropTornLine(file: Deno.FsFile): Promise<void> {
  const { size } = await file.stat();
  const tail = new Uint8Array(Math.min(size, 1 << 16));
  await file.seek(size - tail.length, Deno.SeekMode.Start);
  for (let got = 0; got < tail.length;) {
    const n = await file.read(tail.subarray(got));
    if (n === null) return;
    got += n;
  }
  if (tail.length === 0 || tail[tail.length - 1] === 0x0a) return;
  const cut = tail.lastIndexOf(0x0a) + 1;
  if (cut > 0 || tail.length === size) await file.truncate(size - tail.length + cut);
}

/** The process id a lock file names, or "" if it names none yet. */
async function readOwner(file: Deno.FsFile): Promise<string> {
  const bytes = new Uint8Array(32);
  await file.seek(0, Deno.SeekMode.Start);
  const n = await file.read(bytes) ?? 0;
  const text = new TextDecoder().decode(bytes.subarray(0, n)).trim();
  return /^\d+$/.test(text) ? text : "";
}

/** The files a run writes besides its checkpoint. */
const runFiles = ["config.json", "metrics.jsonl", "summary.json", "plot.svg"];

/**
 * Refuses a folder without a checkpoint that holds files a new run would overwrite, unless
 * they are a run's that failed before its first checkpoint (its config.json is a run's: an
 * object with a dataset): someone else's config.json or summary.json is never replaced.
 */
async function refuseOthersFiles(folder: string, path: string): Promise<void> {
  const present: string[] = [];
  for (const name of runFiles) {
    if (await statOrNull(`${folder}/${name}`).catch(() => null)) present.push(name);
  }
  if (present.length === 0) return;
  const config = await Deno.readTextFile(`${folder}/config.json`).then(JSON.parse).catch(() =>
    null
  );
  const aRun = typeof config === "object" && config !== null &&
    typeof config.dataset === "object" && config.dataset !== null;
  if (!aRun) {
    throw new SelfsupError(
      `${path} holds ${present.join(", ")} that a run would overwrite, and no selfsup run: ` +
        "choose another --out",
    );
  }
}
