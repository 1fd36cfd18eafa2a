/**
 * Batches for training (groups of augmented views of each image, built ahead in workers) and
 * for evaluation (one normalised view, in dataset order), laid out for the GPU as NCHW float32.
 *
 * Every random draw for a view of image i in epoch e comes from its own stream of (seed, e,
 * i, view), so the batches are bit-identical whatever the number of workers.
 *
 * @module
 */

import { SelfsupError } from "../errors.ts";
import { type AugmentConfig, Augmenter, augmentPreset } from "./augment.ts";
import type { WorkerReply, WorkerRequest } from "./augment_worker.ts";
import { type ImageDataset, packDataset, type PackedImageDataset } from "./dataset.ts";
import { Random } from "./random.ts";
import type { TokenBatch } from "./text_batcher.ts";
import { assertViewGroups, type ViewGroup, ViewWriter } from "./views.ts";

/**
 * The order of an epoch: a permutation of 0..n-1 that depends only on (seed, epoch).
 *
 * @example
 * ```ts
 * import { epochPermutation } from "./batcher.ts";
 * const order = epochPermutation(10, 42, 0); // same result on every call
 * ```
 */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  return new Random(seed, epoch, 0).permutation(n);
}

/**
 * A training batch. Its arrays stay valid until the next batch is requested.
 *
 * groups[g] is (count_g · B, 3, h_g, w_g): row v·B + k is view v of group g for image k. The
 * groups lie back to back in one buffer, so consecutive groups of one size also form one
 * array (`new Float32Array(a.buffer, a.byteOffset, a.length + b.length)`).
 */
export interface TrainingBatch {
  /** Normalised views, one array per view group, in the order of the loader's groups. */
  readonly groups: readonly Float32Array[];
  /** Label of each item (B). */
  readonly labels: Int32Array;
  /** Dataset index of each item (B). */
  readonly indices: Int32Array;
  /** Items in the batch (B). */
  readonly size: number;
  readonly epoch: number;
  /** Position of the batch in its epoch. */
  readonly step: number;
  /** Token sequences of the items, for methods that read text (text_batcher.ts). */
  readonly text?: TokenBatch;
}

/** A batch of image views. */
export type MultiViewBatch = TrainingBatch;

/**
 * What the training loop draws batches from: images in groups of views
 * ({@linkcode MultiViewLoader}), token sequences (`TokenLoader`), or both.
 */
export interface TrainingLoader {
  /** Batches in each epoch. */
  readonly batchesPerEpoch: number;
  /**
   * The batches of one epoch, in order, each valid until the next is requested; `first`
   * skips the batches before it.
   */
  epoch(epoch: number, first?: number): AsyncGenerator<TrainingBatch>;
  /** Stops whatever makes batches. Safe to call twice. */
  close(): void;
}

/** Options of {@linkcode MultiViewLoader}. */
export interface MultiViewLoaderOptions {
  /** Images per batch (B); the last partial batch of an epoch is dropped. */
  batchSize: number;
  /** Seed of the shuffles and augmentations. */
  seed: number;
  /**
   * The views of every image: two of one recipe for SimCLR, one per recipe for asymmetric
   * methods (BYOL), global and local crops for multi-crop (`multiCropGroups` in views.ts).
   */
  groups: readonly ViewGroup[];
  /** Worker threads (default: CPU cores − 1, at least 1); 0 builds batches in this thread. */
  workers?: number;
  /** Batches built ahead of the one in use (default: workers + 1, at least 2; none without workers). */
  prefetch?: number;
}

interface Job {
  resolve(buffer: ArrayBuffer): void;
  reject(error: Error): void;
}

/** A batch being built: its dataset indices and the buffer its views will come back in. */
interface Pending {
  readonly indices: Int32Array;
  readonly buffer: Promise<ArrayBuffer>;
}

/**
 * Feeds training: per epoch a seeded shuffle, drop-last batches of groups of augmented views
 * of each image (see {@linkcode ViewWriter} for their layout and random streams), built ahead
 * in Deno Workers while the caller uses the previous batch. Workers receive the dataset's
 * bytes and the groups' recipes once, the dataset in shared memory; batch buffers travel back
 * and forth by transfer and are reused. Call {@linkcode MultiViewLoader.close} (or `using`)
 * to stop the workers.
 *
 * @example
 * ```ts ignore
 * import { augmentPreset } from "./augment.ts";
 * import { MultiViewLoader } from "./batcher.ts";
 * import { syntheticDataset } from "./synthetic.ts";
 * const groups = [{ count: 2, augment: augmentPreset("simclr-seed", 32) }];
 * using loader = new MultiViewLoader(syntheticDataset(), { batchSize: 256, seed: 0, groups });
 * for await (const batch of loader.epoch(0)) {
 *   // upload batch.groups[0] (512 × 3 × 32 × 32 floats) before asking for the next batch
 * }
 * ```
 */
export class MultiViewLoader implements TrainingLoader {
  /** Batches in each epoch: ⌊length / batchSize⌋. */
  readonly batchesPerEpoch: number;
  readonly #dataset: PackedImageDataset;
  readonly #batchSize: number;
  readonly #seed: number;
  readonly #groups: readonly ViewGroup[];
  /** Lays batches out; also makes them when there are no workers. */
  readonly #writer: ViewWriter;
  readonly #inline: boolean;
  readonly #prefetch: number;
  readonly #workers: Worker[] = [];
  readonly #jobs = new Map<number, Job>();
  readonly #free: ArrayBuffer[] = [];
  /** Image i's bytes, for batches built in this thread. */
  readonly #image: (i: number) => Uint8Array;
  /** Batches already started for the start of the epoch after the last one run. */
  #ahead: { epoch: number; jobs: Pending[] } | null = null;
  #nextJob = 0;
  #closed = false;

  /** Packs the dataset into shared memory if needed and starts the workers. */
  constructor(dataset: ImageDataset, options: MultiViewLoaderOptions) {
    const { batchSize, seed, groups } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new SelfsupError(
        `Cannot batch with batch size ${batchSize}: expected a whole number ≥ 1`,
      );
    }
    if (dataset.length < batchSize) {
      throw new SelfsupError(
        `Cannot make a batch of ${batchSize} from a dataset of ${dataset.length} images`,
      );
    }
    assertViewGroups(groups, dataset.length);
    this.#dataset = packDataset(dataset);
    this.#image = (i) => this.#dataset.image(i);
    this.#batchSize = batchSize;
    this.#seed = seed;
    this.#groups = groups;
    this.#writer = new ViewWriter(groups, dataset.height, dataset.width);
    this.batchesPerEpoch = Math.floor(dataset.length / batchSize);
    const workers = options.workers ?? Math.max(1, (navigator.hardwareConcurrency ?? 2) - 1);
    this.#inline = workers === 0;
    // Without workers nothing runs in parallel, so building ahead would only delay batch 0.
    this.#prefetch = workers === 0 ? 0 : Math.max(1, options.prefetch ?? Math.max(2, workers + 1));
    for (let w = 0; w < workers; w++) this.#workers.push(this.#startWorker());
  }

  #startWorker(): Worker {
    const worker = new Worker(new URL("./augment_worker.ts", import.meta.url).href, {
      type: "module",
    });
    worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const reply = event.data;
      const job = this.#jobs.get(reply.id);
      if (!job) return;
      this.#jobs.delete(reply.id);
      if ("error" in reply) job.reject(new Error(`augment worker failed: ${reply.error}`));
      else job.resolve(reply.buffer);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#failAll(new Error(`augment worker failed: ${event.message}`));
    };
    const { pixels, height, width } = this.#dataset;
    worker.postMessage(
      { type: "init", pixels, height, width, groups: this.#groups } satisfies WorkerRequest,
    );
    return worker;
  }

  #failAll(error: Error): void {
    for (const job of this.#jobs.values()) job.reject(error);
    this.#jobs.clear();
  }

  /** Starts building the batch of `indices` and resolves with its filled buffer. */
  #submit(epoch: number, indices: Int32Array): Promise<ArrayBuffer> {
    const buffer = this.#free.pop() ??
      new ArrayBuffer(4 * this.#writer.batchLength(this.#batchSize));
    if (this.#inline) {
      const groups = this.#writer.split(buffer, indices.length);
      this.#writer.write(this.#image, this.#seed, epoch, indices, groups);
      return Promise.resolve(buffer);
    }
    const id = this.#nextJob++;
    const worker = this.#workers[id % this.#workers.length];
    const job = new Promise<ArrayBuffer>((resolve, reject) => {
      this.#jobs.set(id, { resolve, reject });
      worker.postMessage(
        { type: "job", id, seed: this.#seed, epoch, indices, buffer } satisfies WorkerRequest,
        [buffer],
      );
    });
    // A job may fail (on close) while nobody awaits it yet; whoever awaits it still sees why.
    job.catch(() => {});
    return job;
  }

  /**
   * The batches of one epoch, in order. Each batch is valid until the next is requested; its
   * buffer is then reused. Near the end of an epoch the first batches of the next one are
   * started, so that `epoch(e + 1)` begins without a wait. `first` skips the batches before
   * it, to resume an interrupted epoch with the very batches it would have had.
   */
  async *epoch(epoch: number, first = 0): AsyncGenerator<MultiViewBatch> {
    if (this.#closed) throw new Error("MultiViewLoader is closed");
    if (!Number.isInteger(first) || first < 0 || first > this.batchesPerEpoch) {
      throw new Error(`Epoch ${epoch} has no batch ${first}`);
    }
    const steps = this.batchesPerEpoch;
    const b = this.#batchSize;
    const start = (e: number, order: Int32Array, step: number): Pending => {
      const indices = order.slice(step * b, (step + 1) * b);
      return { indices, buffer: this.#submit(e, indices) };
    };
    const order = epochPermutation(this.#dataset.length, this.#seed, epoch);
    let nextOrder: Int32Array | null = null;
    const ahead = this.#ahead;
    this.#ahead = null;
    let pending: Pending[] = [];
    if (ahead?.epoch === epoch && first === 0) pending = ahead.jobs;
    else if (ahead) await this.#recycle(ahead.jobs);
    const next: Pending[] = [];
    let submitted = first + pending.length;
    let finished = false;
    try {
      for (let step = first; step < steps; step++) {
        for (; submitted <= step + this.#prefetch; submitted++) {
          if (submitted < steps) {
            pending.push(start(epoch, order, submitted));
          } else if (submitted - steps < steps) {
            nextOrder ??= epochPermutation(this.#dataset.length, this.#seed, epoch + 1);
            next.push(start(epoch + 1, nextOrder, submitted - steps));
          } else break;
        }
        const batch = pending.shift()!;
        const buffer = await batch.buffer;
        const indices = batch.indices;
        const labels = new Int32Array(b);
        for (let k = 0; k < b; k++) labels[k] = this.#dataset.labels[indices[k]];
        yield { groups: this.#writer.split(buffer, b), labels, indices, size: b, epoch, step };
        this.#free.push(buffer);
      }
      finished = true;
    } finally {
      // Stopped early: let the batches in flight land so their buffers can be reused.
      await this.#recycle(pending);
      if (finished) this.#ahead = { epoch: epoch + 1, jobs: next };
      else await this.#recycle(next);
    }
  }

  async #recycle(jobs: Pending[]): Promise<void> {
    for (const job of jobs) {
      const buffer = await job.buffer.catch(() => null);
      if (buffer) this.#free.push(buffer);
    }
  }

  /** Stops the workers; pending batches fail. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const worker of this.#workers) worker.terminate();
    this.#failAll(new Error("MultiViewLoader was closed"));
  }

  /** Same as {@linkcode MultiViewLoader.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** An evaluation batch. Its arrays stay valid until the next batch is requested. */
export interface EvalBatch {
  /** (B, 3, H, W) normalised images. */
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly indices: Int32Array;
  /** Images in this batch (the last one may be smaller). */
  readonly size: number;
}

/** Options of {@linkcode evalBatches}. */
export interface EvalBatchOptions {
  batchSize: number;
  /** Recipe (default `eval`: normalise only, at the dataset's size). */
  augment?: AugmentConfig;
}

/**
 * The whole dataset in order, one un-augmented normalised view per image, keeping the last
 * partial batch: for linear probes and embeddings.
 *
 * @example
 * ```ts
 * import { evalBatches } from "./batcher.ts";
 * import { syntheticDataset } from "./synthetic.ts";
 * for (const batch of evalBatches(syntheticDataset({ count: 50 }), { batchSize: 32 })) {
 *   batch.size; // 32, then 18
 * }
 * ```
 */
export function* evalBatches(
  dataset: ImageDataset,
  options: EvalBatchOptions,
): Generator<EvalBatch> {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new SelfsupError(
      `Cannot batch with batch size ${batchSize}: expected a whole number ≥ 1`,
    );
  }
  const recipe = options.augment ?? augmentPreset("eval", dataset.height, dataset.width);
  const augmenter = new Augmenter(recipe, dataset.height, dataset.width);
  const images = new Float32Array(batchSize * augmenter.viewSize);
  const rng = new Random(0);
  for (let start = 0; start < dataset.length; start += batchSize) {
    const size = Math.min(batchSize, dataset.length - start);
    const indices = new Int32Array(size);
    const labels = new Int32Array(size);
    for (let k = 0; k < size; k++) {
      indices[k] = start + k;
      labels[k] = dataset.label(start + k);
      augmenter.apply(dataset.image(start + k), rng, images, k * augmenter.viewSize);
    }
    yield {
      images: size === batchSize ? images : images.subarray(0, size * augmenter.viewSize),
      labels,
      indices,
      size,
    };
  }
}
