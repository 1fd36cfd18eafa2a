import { SelfsupError } from "../errors.ts";
import { type Kernel, kernelKey, packParams, type Params } from "./kernel.ts";
import { dispatchGuardKernel } from "./kernels/guard.ts";
import { Allocation, type DType, shapeSize, Tensor, tensorBytes } from "./tensor.ts";

/**
 * Which family of kernel variants suits the adapter. Software rasterisers (llvmpipe, WARP,
 * SwiftShader) are fastest with register-blocked kernels and no workgroup memory; discrete
 * and integrated GPUs want tiles staged in workgroup memory.
 */
export type AdapterClass = "cpu" | "gpu";

/** A workgroup grid: a count of workgroups (folded into 2-D as needed) or explicit x, y, z. */
export type Grid = number | readonly [number, number?, number?];

// INDIRECT: a guarded dispatch reads its grid from a tensor (see Program.guard).
const storageUsage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST |
  GPUBufferUsage.INDIRECT;
const MiB = 1024 * 1024;

/** A tensor's values on the host, in the typed array of its dtype. */
export type HostValues = Float32Array | Int32Array | Uint32Array | Float16Array;

const hostArray = {
  f32: Float32Array,
  i32: Int32Array,
  u32: Uint32Array,
  f16: Float16Array,
} as const;

/**
 * A WebGPU device and what selfsup keeps for it: compiled pipelines, a pool of reusable
 * buffers, and the errors WebGPU reports asynchronously, which surface (with the kernel's
 * name) at the next {@link Gpu.read} or {@link Gpu.sync}.
 */
export class Gpu {
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  #pipelines = new Map<string, { code: string; pipeline: GPUComputePipeline }>();
  #free = new Map<string, GPUBuffer[]>();
  #pendingChecks: Promise<string | undefined>[] = [];
  #uncaptured: string | undefined;
  #bytesInUse = 0;
  #freeStaging: GPUBuffer[] = [];

  constructor(
    readonly device: GPUDevice,
    /** The adapter's human-readable name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
    readonly adapterName: string,
    readonly adapterClass: AdapterClass,
  ) {
    this.limits = device.limits;
    this.features = new Set(device.features);
    device.addEventListener("uncapturederror", (event) => {
      this.#uncaptured ??= (event as GPUUncapturedErrorEvent).error.message;
    });
  }

  /** Bytes of the storage buffers handed out by {@link acquire} and not yet released. */
  get bytesInUse(): number {
    return this.#bytesInUse;
  }

  /** The compute pipeline of a kernel, compiled once. */
  pipeline(kernel: Kernel): GPUComputePipeline {
    const key = kernelKey(kernel);
    const cached = this.#pipelines.get(key);
    if (cached) {
      if (cached.code !== kernel.code) throw new Error(`Two different kernels are named ${key}`);
      return cached.pipeline;
    }
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code: kernel.code, label: kernel.name });
    const pipeline = this.device.createComputePipeline({
      label: kernel.name,
      layout: "auto",
      compute: { module, entryPoint: kernel.entryPoint ?? "main", constants: kernel.constants },
    });
    this.#check(this.device.popErrorScope(), `WGSL kernel ${kernel.name}`);
    this.#pipelines.set(key, { code: kernel.code, pipeline });
    return pipeline;
  }

  /**
   * A storage buffer of at least `bytes`, reused from the pool when one of that size is free.
   * `label` names what it is for in the error raised when it cannot be bound or allocated.
   */
  acquire(bytes: number, label: string): GPUBuffer {
    const size = Math.max(256, Math.ceil(bytes / 256) * 256);
    if (size > this.limits.maxStorageBufferBindingSize) {
      throw new SelfsupError(
        `${label} needs ${(size / MiB).toFixed(1)} MiB, more than this adapter can bind ` +
          `(${
            (this.limits.maxStorageBufferBindingSize / MiB).toFixed(0)
          } MiB): use a smaller batch`,
      );
    }
    this.#bytesInUse += size;
    const reused = this.#free.get(String(size))?.pop();
    if (reused) return reused;
    this.device.pushErrorScope("out-of-memory");
    const buffer = this.device.createBuffer({ size, usage: storageUsage, label });
    this.#check(this.device.popErrorScope(), `GPU out of memory allocating ${label}`, true);
    return buffer;
  }

  /** Returns a buffer from {@link acquire} to the pool; a buffer released twice is a bug. */
  release(buffer: GPUBuffer): void {
    const key = String(buffer.size);
    const list = this.#free.get(key) ?? [];
    // Two later acquires would share it, each overwriting what the other holds.
    if (list.includes(buffer)) throw new Error(`Buffer ${buffer.label} was released twice`);
    this.#bytesInUse -= buffer.size;
    list.push(buffer);
    this.#free.set(key, list);
  }

  /** A tensor in a buffer of its own, from the pool; give it back with {@link release}. */
  tensor(shape: readonly number[], label: string, dtype: DType = "f32"): Tensor {
    return new Tensor(this.acquire(tensorBytes(shapeSize(shape), dtype), label), shape, 0, dtype);
  }

  /** Copies host data into a tensor (queued; ordered before later submits). */
  write(tensor: Tensor, data: HostValues): void {
    assertHostVisible(tensor);
    if (data.length !== tensor.size) {
      throw new Error(`Writing ${data.length} values into tensor [${tensor.shape}]`);
    }
    if ((tensor.dtype === "f16") !== data instanceof Float16Array) {
      throw new Error(`Writing ${data.constructor.name} into ${tensor.dtype} tensor`);
    }
    // Writes are whole 4-byte words: an odd number of f16s gets a zero after it.
    let whole = data;
    if (data.byteLength % 4 !== 0) (whole = new Float16Array(data.length + 1)).set(data);
    // The data may live in shared memory (batches built by workers); WebGPU copies it.
    this.device.queue.writeBuffer(
      tensor.buffer,
      tensor.byteOffset,
      whole as Float32Array<ArrayBuffer>,
    );
  }

  /** Encodes the programs into one command buffer and submits it. */
  submit(...programs: Program[]): void {
    const encoder = this.device.createCommandEncoder();
    for (const program of programs) program.encode(encoder);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Waits for submitted work and raises any error WebGPU reported since the last check. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    await this.#raisePending();
  }

  /** Copies tensors back to the host after all submitted work, with one sync for all. */
  async read(...tensors: Tensor[]): Promise<HostValues[]> {
    tensors.forEach(assertHostVisible);
    const total = tensors.reduce((sum, t) => sum + t.byteLength, 0);
    const staging = this.#staging(total);
    const encoder = this.device.createCommandEncoder();
    let offset = 0;
    for (const t of tensors) {
      encoder.copyBufferToBuffer(t.buffer, t.byteOffset, staging, offset, t.byteLength);
      offset += t.byteLength;
    }
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const bytes = staging.getMappedRange().slice(0);
    staging.unmap();
    this.#freeStaging.push(staging);
    await this.#raisePending();
    offset = 0;
    return tensors.map((t) => {
      const values = new hostArray[t.dtype](bytes, offset, t.size);
      offset += t.byteLength;
      return values;
    });
  }

  /** Reads one f32 tensor. */
  async readF32(tensor: Tensor): Promise<Float32Array> {
    const [values] = await this.read(tensor);
    return values as Float32Array;
  }

  /** Gives back a device a caller made for itself alone: `using made = gpu`. */
  [Symbol.dispose](): void {
    this.destroy();
  }

  destroy(): void {
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    for (const b of this.#freeStaging) b.destroy();
    this.#free.clear();
    this.#freeStaging = [];
    this.device.destroy();
  }

  // Readback buffers are reused: fresh large host-visible allocations are slow.
  #staging(bytes: number): GPUBuffer {
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(bytes)));
    const index = this.#freeStaging.findIndex((b) => b.size === size);
    if (index >= 0) return this.#freeStaging.splice(index, 1)[0];
    return this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  #check(scope: Promise<GPUError | null>, context: string, userFacing = false): void {
    this.#pendingChecks.push(scope.then((error) => {
      if (!error) return undefined;
      const message = `${context}: ${error.message.trim()}`;
      if (userFacing) throw new SelfsupError(message.split("\n")[0]);
      return message;
    }));
  }

  async #raisePending(): Promise<void> {
    const checks = this.#pendingChecks;
    this.#pendingChecks = [];
    for (const message of await Promise.all(checks)) if (message) throw new Error(message);
    const uncaptured = this.#uncaptured;
    this.#uncaptured = undefined;
    if (uncaptured) throw new Error(`WebGPU error: ${uncaptured}`);
  }
}

type Op =
  | {
    kind: "dispatch";
    kernel: Kernel;
    pipeline: GPUComputePipeline;
    tensors: readonly Tensor[];
    params?: GPUBuffer;
    grid: number[];
    bindGroup?: GPUBindGroup;
    /** Floating-point operations of matrix work (2 per multiply-add), where counted. */
    flops: number;
    /** A guarded dispatch's grid: u32 x, y, z at this element of the tensor (see guard). */
    indirect?: { tensor: Tensor; index: number };
  }
  | { kind: "clear"; tensor: Tensor };

/**
 * A recorded sequence of GPU work — a forward pass, a backward pass, a whole training step —
 * with its bind groups and parameter buffers made once, so running it again only encodes.
 *
 * Its tensors come in two kinds. {@link Program.tensor} makes one with a buffer of its own
 * for the program's life: inputs the host writes, results it reads. {@link Program.temp}
 * makes one whose memory is planned when the program first runs, from the operations that
 * use it: temporaries whose uses are over share buffers, so a training step holds an
 * activation only until the backward pass has consumed it and a gradient only until the
 * layer below has. The host may read or write a temporary only after {@link Program.keep}.
 */
export class Program {
  readonly #ops: Op[] = [];
  readonly #owned: GPUBuffer[] = [];
  readonly #temps: Allocation[] = [];
  #planned = false;

  constructor(readonly gpu: Gpu, readonly label: string) {}

  /** A new tensor with a buffer of its own for the program's life. */
  tensor(shape: readonly number[], label: string, dtype: DType = "f32"): Tensor {
    const tensor = this.gpu.tensor(shape, `${this.label}: ${label} [${shape}]`, dtype);
    this.#owned.push(tensor.buffer);
    return tensor;
  }

  /** A temporary tensor: its memory is shared with others whose uses do not overlap it. */
  temp(shape: readonly number[], label: string, dtype: DType = "f32"): Tensor {
    this.#assertRecording();
    const allocation = new Allocation(
      tensorBytes(shapeSize(shape), dtype),
      `${this.label}: ${label} [${shape}]`,
      this,
    );
    this.#temps.push(allocation);
    return new Tensor(allocation, shape, 0, dtype);
  }

  /** Gives temporaries buffers of their own, so the host can read or write them. */
  keep(...tensors: Tensor[]): void {
    for (const t of tensors) {
      const allocation = this.#owns(t);
      if (!allocation || allocation.kept) continue;
      this.#assertRecording();
      allocation.kept = true;
      allocation.buffer = this.#own(allocation);
    }
  }

  /**
   * Records one dispatch. The kernel's uniform `Params` struct, when given, is binding 0;
   * the tensors are bindings 1, 2, … in order. A plain count of workgroups is folded into
   * 2-D when it exceeds the per-dimension limit: kernels index workgroups as
   * `wid.x + wid.y * nwg.x` and ignore those past the end. `flops` counts the dispatch's
   * matrix work (2 per multiply-add: convolutions, linear layers, attention products), which
   * bench divides by the step's time and the profile by the dispatch's.
   */
  dispatch(
    kernel: Kernel,
    tensors: readonly Tensor[],
    grid: Grid,
    params?: Params,
    flops = 0,
  ): void {
    this.#assertRecording();
    const gpu = this.gpu;
    const pipeline = gpu.pipeline(kernel);
    let buffer: GPUBuffer | undefined;
    if (params) {
      const bytes = packParams(params);
      buffer = gpu.device.createBuffer({
        size: bytes.byteLength,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        label: `${kernel.name} params`,
      });
      gpu.device.queue.writeBuffer(buffer, 0, bytes);
      this.#owned.push(buffer);
    }
    this.#use(...tensors);
    this.#ops.push({
      kind: "dispatch",
      kernel,
      pipeline,
      tensors,
      params: buffer,
      grid: foldGrid(grid, gpu, kernel),
      flops,
    });
  }

  /**
   * Records the dispatches `record` makes so that they run only while `flag` (u32 [1]) holds
   * 0 when they start — a condition decided on the GPU, with no read by the host: a gate
   * kernel before them writes each one's grid, or zeros, where the dispatch reads it
   * (`dispatchWorkgroupsIndirect`). Clears inside `record` are not allowed: they cannot be
   * skipped.
   */
  guard(flag: Tensor, record: () => void): void {
    this.#assertRecording();
    if (flag.dtype !== "u32" || flag.size !== 1 || flag.allocation) {
      throw new Error("A guard's flag is one u32 of a tensor with its own buffer, not a temporary");
    }
    const gateAt = this.#ops.length;
    record();
    const guarded = this.#ops.slice(gateAt);
    const grids: number[] = [];
    for (const op of guarded) {
      if (op.kind !== "dispatch" || op.indirect) {
        throw new Error(`Program ${this.label}: only plain dispatches can be guarded`);
      }
      grids.push(...op.grid);
    }
    if (grids.length === 0) return;
    const all = this.tensor([grids.length], "guarded grids", "u32");
    const chosen = this.tensor([grids.length], "guarded grids as run", "u32");
    this.gpu.write(all, Uint32Array.from(grids));
    guarded.forEach((op, i) => {
      if (op.kind === "dispatch") op.indirect = { tensor: chosen, index: 3 * i };
    });
    // The gate goes before the guarded dispatches: record it last, then move it there.
    this.dispatch(dispatchGuardKernel, [flag, all, chosen], Math.ceil(grids.length / 64), [
      grids.length,
    ]);
    // Temporaries' first and last uses keep the indices they were recorded at: the planner
    // needs only their order, which the move keeps (the gate uses no temporary).
    this.#ops.splice(gateAt, 0, this.#ops.pop()!);
  }

  /** Records zero-filling a tensor. */
  clear(tensor: Tensor): void {
    this.#assertRecording();
    this.#use(tensor);
    this.#ops.push({ kind: "clear", tensor });
  }

  /** Appends another program's operations, planned; it stays the owner of its tensors. */
  append(other: Program): void {
    this.#assertRecording();
    other.plan();
    this.#ops.push(...other.#ops);
  }

  /** The FLOPs of the matrix work recorded (see {@link Program.dispatch}), appended programs included. */
  get flops(): number {
    return this.dispatches.reduce((sum, d) => sum + d.flops, 0);
  }

  /**
   * The dispatches recorded, in order: each kernel's name, its FLOPs and the bytes of the
   * tensors it binds (what it can read or write at most: a memory-bound kernel's traffic).
   */
  get dispatches(): readonly { name: string; flops: number; bytes: number }[] {
    return this.#ops.flatMap((op) =>
      op.kind === "dispatch"
        ? [{
          name: op.kernel.entryPoint && op.kernel.entryPoint !== "main"
            ? `${op.kernel.name}.${op.kernel.entryPoint}`
            : op.kernel.name,
          flops: op.flops,
          bytes: op.tensors.reduce((sum, t) => sum + t.byteLength, 0),
        }]
        : []
    );
  }

  /** The number of dispatches recorded. */
  get dispatchCount(): number {
    return this.#ops.filter((op) => op.kind === "dispatch").length;
  }

  /**
   * Assigns the temporaries' memory and makes the bind groups; runs by itself before the
   * program is first encoded, after which nothing more can be recorded.
   */
  plan(): void {
    if (this.#planned) return;
    this.#planned = true;
    const starting = new Map<number, Allocation[]>();
    const ending = new Map<number, Allocation[]>();
    for (const a of this.#temps) {
      if (a.kept) continue;
      if (a.first === Infinity) {
        a.buffer = this.#own(a);
        continue;
      }
      starting.set(a.first, [...(starting.get(a.first) ?? []), a]);
      ending.set(a.last, [...(ending.get(a.last) ?? []), a]);
    }
    const free: GPUBuffer[] = [];
    for (let i = 0; i < this.#ops.length; i++) {
      for (const a of starting.get(i) ?? []) a.buffer = takeFitting(free, a.bytes) ?? this.#own(a);
      // Released only after every temporary this operation starts has its buffer, so no
      // operation reads and writes one buffer through two tensors.
      for (const a of ending.get(i) ?? []) free.push(a.buffer!);
    }
    for (const op of this.#ops) {
      if (op.kind !== "dispatch" || op.bindGroup) continue;
      const entries: GPUBindGroupEntry[] = op.tensors.map((t, i) => ({
        binding: i + 1,
        resource: t.binding(),
      }));
      if (op.params) entries.push({ binding: 0, resource: { buffer: op.params } });
      op.bindGroup = this.gpu.device.createBindGroup({
        label: op.kernel.name,
        layout: op.pipeline.getBindGroupLayout(0),
        entries,
      });
    }
  }

  /**
   * Encodes the program. With `timestamps`, each dispatch runs in a compute pass of its own
   * that writes the query set's timestamps 2i and 2i + 1 at its start and end (a profile:
   * passes do not overlap then, so the whole is slower than without).
   */
  encode(encoder: GPUCommandEncoder, timestamps?: GPUQuerySet): void {
    this.plan();
    let pass: GPUComputePassEncoder | undefined;
    let index = 0;
    for (const op of this.#ops) {
      if (op.kind === "dispatch") {
        if (timestamps) {
          pass?.end();
          pass = encoder.beginComputePass({
            label: op.kernel.name,
            timestampWrites: {
              querySet: timestamps,
              beginningOfPassWriteIndex: 2 * index,
              endOfPassWriteIndex: 2 * index + 1,
            },
          });
          index++;
        }
        pass ??= encoder.beginComputePass({ label: this.label });
        pass.setPipeline(op.pipeline);
        pass.setBindGroup(0, op.bindGroup!);
        if (op.indirect) {
          const { tensor, index } = op.indirect;
          pass.dispatchWorkgroupsIndirect(tensor.buffer, tensor.byteOffset + 4 * index);
        } else {
          pass.dispatchWorkgroups(op.grid[0], op.grid[1], op.grid[2]);
        }
        continue;
      }
      pass?.end();
      pass = undefined;
      encoder.clearBuffer(op.tensor.buffer, op.tensor.byteOffset, op.tensor.byteLength);
    }
    pass?.end();
  }

  /** Returns the program's buffers to the pool; the program must not run again. */
  destroy(): void {
    for (const buffer of this.#owned) {
      if (buffer.usage & GPUBufferUsage.UNIFORM) buffer.destroy();
      else this.gpu.release(buffer);
    }
    this.#owned.length = 0;
    this.#temps.length = 0;
    this.#ops.length = 0;
  }

  #assertRecording(): void {
    if (this.#planned) throw new Error(`Program ${this.label} has run: record everything first`);
  }

  #owns(t: Tensor): Allocation | undefined {
    const allocation = t.allocation;
    if (allocation && allocation.owner !== this) {
      throw new Error(`${allocation.label} is a temporary of another program than ${this.label}`);
    }
    return allocation;
  }

  #use(...tensors: readonly Tensor[]): void {
    const index = this.#ops.length;
    for (const t of tensors) {
      const allocation = this.#owns(t);
      if (!allocation) continue;
      allocation.first = Math.min(allocation.first, index);
      allocation.last = Math.max(allocation.last, index);
    }
  }

  #own(allocation: Allocation): GPUBuffer {
    const buffer = this.gpu.acquire(allocation.bytes, allocation.label);
    this.#owned.push(buffer);
    return buffer;
  }
}

/**
 * Takes from `free` the smallest buffer that holds `bytes` without wasting more than half of
 * itself, if there is one.
 */
function takeFitting(free: GPUBuffer[], bytes: number): GPUBuffer | undefined {
  let best = -1;
  for (let i = 0; i < free.length; i++) {
    const size = free[i].size;
    if (size >= bytes && size <= 2 * bytes + 256 && (best < 0 || size < free[best].size)) best = i;
  }
  return best < 0 ? undefined : free.splice(best, 1)[0];
}

function assertHostVisible(tensor: Tensor): void {
  const allocation = tensor.allocation;
  if (allocation && !allocation.kept) {
    throw new Error(
      `${allocation.label} is a temporary that shares its memory: program.keep() it to read or write it`,
    );
  }
}

function foldGrid(grid: Grid, gpu: Gpu, kernel: Kernel): number[] {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (typeof grid === "number") {
    if (!Number.isInteger(grid) || grid < 1) {
      throw new Error(`Kernel ${kernel.name}: invalid workgroup count ${grid}`);
    }
    const rows = Math.ceil(grid / max);
    return [Math.ceil(grid / rows), rows, 1];
  }
  const dims = [grid[0], grid[1] ?? 1, grid[2] ?? 1];
  if (dims.some((d) => d > max || !Number.isInteger(d) || d < 1)) {
    throw new Error(`Kernel ${kernel.name}: workgroup grid [${dims}] exceeds ${max} per dimension`);
  }
  return dims;
}
