import { SelfsupError } from "../errors.ts";
import type { Gpu, Program } from "./gpu.ts";

/** The time a kernel takes in a step, over all its dispatches. */
export interface KernelTime {
  /** The kernel's name, with its entry point when not `main` (e.g. `sgd_update.without_momentum`). */
  readonly name: string;
  /** Dispatches of the kernel in one step. */
  readonly calls: number;
  /** Milliseconds a step spends in the kernel (median over the profiled steps). */
  readonly milliseconds: number;
  /** Its share of the step's kernel time, in [0, 1]. */
  readonly share: number;
  /** FLOPs of its matrix work in a step (0 for kernels that do none). */
  readonly gflop: number;
  readonly gflops: number;
  /**
   * Bytes of the tensors it binds, per step, over its time: the traffic a memory-bound
   * kernel can have at most (it may read a tensor more than once, or not all of it).
   */
  readonly gbPerSecond: number;
}

/** WebGPU's largest query set. */
const maxQueries = 4096;

/**
 * Times every dispatch of a recorded program with timestamp queries, each in a compute pass
 * of its own, over `steps` runs (after one to warm up), and sums them by kernel: where a
 * step's time goes. `prepare(t)` writes the step values of run t, as a training loop does.
 * Needs the adapter's `timestamp-query` feature, which `createGpu` requests when there is one.
 */
export async function profileProgram(
  gpu: Gpu,
  program: Program,
  prepare: (step: number) => void,
  steps = 3,
): Promise<KernelTime[]> {
  if (!gpu.features.has("timestamp-query")) {
    throw new SelfsupError(`${gpu.adapterName} has no timestamp queries: cannot profile kernels`);
  }
  const dispatches = program.dispatches;
  const count = 2 * dispatches.length;
  if (count > maxQueries) {
    throw new SelfsupError(
      `A step of ${dispatches.length} dispatches is more than one query set can time`,
    );
  }
  const device = gpu.device;
  const querySet = device.createQuerySet({ type: "timestamp", count });
  const resolve = device.createBuffer({
    size: count * 8,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const read = device.createBuffer({
    size: count * 8,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  // Per dispatch, its time in each profiled step.
  const times = dispatches.map(() => [] as number[]);
  try {
    for (let step = 0; step <= steps; step++) {
      prepare(step);
      const encoder = device.createCommandEncoder();
      program.encode(encoder, querySet);
      encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, read, 0, count * 8);
      device.queue.submit([encoder.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const stamps = new BigUint64Array(read.getMappedRange().slice(0));
      read.unmap();
      // Step 0 warms up: pipelines, caches, first-use allocations.
      if (step === 0) continue;
      dispatches.forEach((_, i) => times[i].push(Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6));
    }
    await gpu.sync();
  } finally {
    querySet.destroy();
    resolve.destroy();
    read.destroy();
  }
  const byKernel = new Map<string, { calls: number; ms: number; flops: number; bytes: number }>();
  dispatches.forEach((d, i) => {
    const entry = byKernel.get(d.name) ?? { calls: 0, ms: 0, flops: 0, bytes: 0 };
    entry.calls++;
    entry.ms += median(times[i]);
    entry.flops += d.flops;
    entry.bytes += d.bytes;
    byKernel.set(d.name, entry);
  });
  const total = [...byKernel.values()].reduce((sum, e) => sum + e.ms, 0);
  return [...byKernel].map(([name, e]) => ({
    name,
    calls: e.calls,
    milliseconds: e.ms,
    share: total > 0 ? e.ms / total : 0,
    gflop: e.flops / 1e9,
    gflops: e.ms > 0 ? e.flops / 1e9 / (e.ms / 1000) : 0,
    gbPerSecond: e.ms > 0 ? e.bytes / 1e9 / (e.ms / 1000) : 0,
  })).sort((a, b) => b.milliseconds - a.milliseconds);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
