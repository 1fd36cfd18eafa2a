/**
 * Throughput of the augmentation pipeline: the seed recipe at 32×32 on one core and through
 * the worker loader on all cores, and optionally the time to load CIFAR-10.
 *
 * @module
 */

import { Augmenter, augmentPreset } from "./augment.ts";
import { TwoViewLoader } from "./batcher.ts";
import { loadCifar } from "./cifar.ts";
import { Random } from "./random.ts";
import { syntheticDataset } from "./synthetic.ts";

/** Options of {@linkcode benchAugment}. */
export interface BenchAugmentOptions {
  /** Seconds spent on each measurement (default 3). */
  seconds?: number;
  /** Workers for the all-cores figure (default: one per core). */
  workers?: number;
  /** A CIFAR-10 folder or archive: when given, loading both splits from it is timed. */
  cifar?: string;
}

/** Figures from {@linkcode benchAugment}. */
export interface BenchAugmentResult {
  /** Views per second in this thread (one core). */
  viewsPerSecondOneCore: number;
  /** Views per second through {@linkcode TwoViewLoader} with the workers below. */
  viewsPerSecondAllCores: number;
  /** Workers used for the all-cores figure. */
  cores: number;
  /** Seconds to load all 60,000 CIFAR-10 images, when a folder was given. */
  loadCifarSeconds?: number;
}

/**
 * Measures views per second of the `simclr-seed` recipe at 32×32 on the synthetic set.
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
  const recipe = augmentPreset("simclr-seed", 32);

  const augmenter = new Augmenter(recipe, 32, 32);
  const out = new Float32Array(256 * augmenter.viewSize);
  const rng = new Random(0);
  let views = 0;
  // A short warm-up so the JIT has compiled the hot loops before timing starts.
  for (let i = 0; i < 2000; i++) {
    augmenter.apply(dataset.image(i), rng.reseed(0, 0, i), out, 0);
  }
  let start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    for (let k = 0; k < 256; k++, views++) {
      const i = views % dataset.length;
      augmenter.apply(dataset.image(i), rng.reseed(0, 1, views), out, k * augmenter.viewSize);
    }
  }
  const viewsPerSecondOneCore = views / ((performance.now() - start) / 1000);

  using loader = new TwoViewLoader(dataset, { batchSize: 256, seed: 0, workers: cores });
  // The first epoch warms the workers up; timing starts with the second.
  for await (const _ of loader.epoch(0)) { /* warm-up */ }
  views = 0;
  start = performance.now();
  let elapsed = 0;
  for (let epoch = 1; elapsed < seconds * 1000; epoch++) {
    for await (const batch of loader.epoch(epoch)) {
      views += 2 * batch.size;
      // Stop the clock at the last batch received, before the batches in flight drain.
      elapsed = performance.now() - start;
      if (elapsed >= seconds * 1000) break;
    }
  }
  const viewsPerSecondAllCores = views / (elapsed / 1000);

  const result: BenchAugmentResult = { viewsPerSecondOneCore, viewsPerSecondAllCores, cores };
  if (options.cifar) {
    const t0 = performance.now();
    await loadCifar({ split: "train", path: options.cifar, download: false });
    await loadCifar({ split: "test", path: options.cifar, download: false });
    result.loadCifarSeconds = (performance.now() - t0) / 1000;
  }
  return result;
}
