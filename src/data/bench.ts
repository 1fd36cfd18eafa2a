/**
 * Throughput of the augmentation pipeline: the seed recipe's two 32×32 views and the default
 * multi-crop recipe (2 global crops of 32×32 and 6 local crops of 16×16) on one core and
 * through the worker loader on all cores, and optionally the time to load CIFAR-10.
 *
 * @module
 */

import { augmentPreset } from "./augment.ts";
import { MultiViewLoader } from "./batcher.ts";
import { loadCifar } from "./cifar.ts";
import type { ImageDataset } from "./dataset.ts";
import { syntheticDataset } from "./synthetic.ts";
import { multiCropGroups, type ViewGroup, viewsPerImage } from "./views.ts";

/** Options of {@linkcode benchAugment}. */
export interface BenchAugmentOptions {
  /** Seconds spent on each measurement (default 3). */
  seconds?: number;
  /** Workers for the all-cores figure (default: one per core). */
  workers?: number;
  /** A CIFAR-10 folder or archive: when given, loading both splits from it is timed. */
  cifar?: string;
}

/** Views per second of one recipe. */
export interface AugmentThroughput {
  /** Views per second built in this thread (one core). */
  viewsPerSecondOneCore: number;
  /** Views per second through {@linkcode MultiViewLoader} with the workers below. */
  viewsPerSecondAllCores: number;
}

/** Figures from {@linkcode benchAugment}; the top-level ones are the seed recipe's. */
export interface BenchAugmentResult extends AugmentThroughput {
  /** Workers used for the all-cores figures. */
  cores: number;
  /** The default multi-crop recipe (`multiCropGroups` at 32×32), its views named in `recipe`. */
  multiCrop: AugmentThroughput & { recipe: string };
  /** Seconds to load all 60,000 CIFAR-10 images, when a folder was given. */
  loadCifarSeconds?: number;
}

/**
 * Measures views per second of the `simclr-seed` recipe and of the multi-crop recipe on the
 * synthetic set's 32×32 images.
 *
 * @example
 * ```ts ignore
 * import { benchAugment } from "./bench.ts";
 * const r = await benchAugment({ seconds: 2 });
 * console.log(`${r.viewsPerSecondOneCore.toFixed(0)} views/s on one core`);
 * ```
 */
export async function benchAugment(options: BenchAugmentOptions = {}): Promise<BenchAugmentResult> {
  const seconds = options.seconds ?? 3;
  const cores = options.workers ?? navigator.hardwareConcurrency ?? 1;
  const dataset = syntheticDataset({ count: 5000 });
  const throughput = async (groups: readonly ViewGroup[]): Promise<AugmentThroughput> => ({
    viewsPerSecondOneCore: await viewsPerSecond(dataset, groups, 0, seconds),
    viewsPerSecondAllCores: await viewsPerSecond(dataset, groups, cores, seconds),
  });
  const seed = await throughput([{ count: 2, augment: augmentPreset("simclr-seed", 32) }]);
  const groups = multiCropGroups({ height: 32 });
  const recipe = groups.map((g) => `${g.count}×${g.augment.height}×${g.augment.width}`)
    .join(" + ");
  const result: BenchAugmentResult = {
    ...seed,
    cores,
    multiCrop: { ...await throughput(groups), recipe },
  };
  if (options.cifar) {
    const t0 = performance.now();
    await loadCifar({ split: "train", path: options.cifar, download: false });
    await loadCifar({ split: "test", path: options.cifar, download: false });
    result.loadCifarSeconds = (performance.now() - t0) / 1000;
  }
  return result;
}

/** Views per second through a loader with `workers` workers (0: built in this thread). */
async function viewsPerSecond(
  dataset: ImageDataset,
  groups: readonly ViewGroup[],
  workers: number,
  seconds: number,
): Promise<number> {
  const batchSize = 256;
  using loader = new MultiViewLoader(dataset, { batchSize, seed: 0, groups, workers });
  // A few batches first, so that the JIT has compiled the hot loops in every thread.
  for await (const batch of loader.epoch(0)) if (batch.step === 2 * Math.max(workers, 4)) break;
  const viewsPerBatch = viewsPerImage(groups) * batchSize;
  let views = 0;
  const start = performance.now();
  let elapsed = 0;
  for (let epoch = 1; elapsed < seconds * 1000; epoch++) {
    for await (const _ of loader.epoch(epoch)) {
      views += viewsPerBatch;
      // Stop the clock at the last batch received, before the batches in flight drain.
      elapsed = performance.now() - start;
      if (elapsed >= seconds * 1000) break;
    }
  }
  return views / (elapsed / 1000);
}
