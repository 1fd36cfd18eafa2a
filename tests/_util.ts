// Shared helpers for the tests: golden fixtures, tolerant comparison, one GPU per process.
import type { Checkpoint } from "../src/checkpoint.ts";
import { createGpu } from "../src/gpu/device.ts";
import { type AdapterClass, Gpu, Program } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { readSafetensors } from "../src/io/safetensors.ts";

/** Where the PyTorch golden vectors are: $FIXTURES_DIR, else ../shared/fixtures. */
export const fixturesDir = Deno.env.get("FIXTURES_DIR") ??
  new URL("../../shared/fixtures", import.meta.url).pathname;

/** A fixture's tensors (as float arrays) and its parsed metadata. */
export interface Fixture {
  get(name: string): Float32Array;
  shape(name: string): number[];
  has(name: string): boolean;
  names(): string[];
  meta: Record<string, unknown>;
}

export function loadFixture(name: string): Promise<Fixture> {
  return loadFixtureFile(`${fixturesDir}/${name}.safetensors`);
}

/** A safetensors file of golden values, by path. */
export async function loadFixtureFile(path: string): Promise<Fixture> {
  const name = path;
  let file;
  try {
    file = await readSafetensors(path);
  } catch (error) {
    throw new Error(
      `Fixture ${path} is unreadable (${(error as Error).message}); set FIXTURES_DIR to the ` +
        `folder of PyTorch golden vectors`,
    );
  }
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(file.metadata)) meta[k] = JSON.parse(v);
  const entry = (n: string) => {
    const t = file.tensors.get(n);
    if (!t) throw new Error(`Fixture ${name} has no tensor ${n}`);
    return t;
  };
  return {
    get: (n) => {
      const t = entry(n);
      return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data, Number);
    },
    shape: (n) => entry(n).shape,
    has: (n) => file.tensors.has(n),
    names: () => [...file.tensors.keys()],
    meta,
  };
}

/**
 * Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise; on failure the message
 * lists the worst elements.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4, label = "tensor" }: { atol?: number; rtol?: number; label?: string } =
    {},
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length}, expected ${expected.length}`);
  }
  const bad: { i: number; excess: number }[] = [];
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    const allowed = atol + rtol * Math.abs(expected[i]);
    if (!(error <= allowed)) {
      bad.push({ i, excess: Number.isNaN(error) ? Infinity : error / allowed });
    }
  }
  if (bad.length === 0) return;
  bad.sort((a, b) => b.excess - a.excess);
  const worst = bad.slice(0, 5).map(({ i }) => `[${i}] ${actual[i]} vs ${expected[i]}`).join(", ");
  throw new Error(
    `${label}: ${bad.length} of ${actual.length} elements differ beyond atol ${atol}, ` +
      `rtol ${rtol}; worst: ${worst}`,
  );
}

/** Fails unless two f32 tensors hold the same bits, element for element. */
export function assertSameBits(actual: Float32Array, expected: Float32Array, label: string): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length}, expected ${expected.length}`);
  }
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const differ = a.filter((bits, i) => bits !== e[i]).length;
  const first = a.findIndex((bits, i) => bits !== e[i]);
  if (differ > 0) {
    throw new Error(
      `${label}: ${differ} of ${a.length} elements differ; first [${first}] ` +
        `${actual[first]} vs ${expected[first]}`,
    );
  }
}

let shared: Promise<Gpu> | undefined;

/** One device per test process: creating devices is slow and llvmpipe has two cores. */
export function testGpu(): Promise<Gpu> {
  shared ??= createGpu();
  return shared;
}

const families = new Map<AdapterClass, Promise<Gpu>>();

/**
 * The test device running the given kernel family whatever the adapter. A test named after a
 * family pins it here: {@link testGpu} picks the family from the adapter's name, so on a GPU
 * both "cpu" and "gpu" tests would otherwise run the GPU family. The other family runs on
 * testGpu()'s device too, with pipelines and buffers of its own: one device per process.
 */
export function familyGpu(adapterClass: AdapterClass): Promise<Gpu> {
  let gpu = families.get(adapterClass);
  if (!gpu) {
    gpu = testGpu().then((shared) =>
      shared.adapterClass === adapterClass
        ? shared
        : new Gpu(shared.device, shared.adapterName, adapterClass)
    );
    families.set(adapterClass, gpu);
  }
  return gpu;
}

/** The kernel families, for tests that run on each. */
export const adapterClasses: readonly AdapterClass[] = ["cpu", "gpu"];

/** A seeded generator of standard-normal float32 values, for random test inputs. */
export function randn(count: number, seed: number, scale = 1): Float32Array<ArrayBuffer> {
  let state = seed >>> 0 || 1;
  const uniform = () => {
    // xorshift32: tiny, and good enough for test data.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }
  return out;
}

/** The Euclidean norm, in float64. */
export function norm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
}

/**
 * Records a program with `build`, writes `values` into its inputs in order, runs it once and
 * reads its outputs (copies).
 */
export async function runOnce(
  gpu: Gpu,
  build: (p: Program) => { inputs: Tensor[]; outputs: Tensor[] },
  values: readonly Float32Array<ArrayBuffer>[],
): Promise<Float32Array[]> {
  const program = new Program(gpu, "test");
  const { inputs, outputs } = build(program);
  program.keep(...inputs, ...outputs);
  inputs.forEach((t, i) => gpu.write(t, values[i]));
  gpu.submit(program);
  const result = await gpu.read(...outputs) as Float32Array[];
  program.destroy();
  return result.map((r) => r.slice());
}

/** Writes the inputs (copies of the arrays), runs the program and reads the outputs. */
export async function runProgram(
  program: Program,
  inputs: [Tensor, Float32Array | Uint32Array][],
  outputs: Tensor[],
): Promise<Float32Array[]> {
  for (const [t, v] of inputs) program.gpu.write(t, v.slice());
  program.gpu.submit(program);
  return (await program.gpu.read(...outputs)) as Float32Array[];
}

/** Asserts that two checkpoints hold the same tensors, bit for bit, and at least one each. */
export function assertSameState(actual: Checkpoint, expected: Checkpoint): void {
  const names = (m: Map<string, unknown>) => [...m.keys()].sort().join();
  const same = (a: Float32Array | undefined, b: Float32Array) =>
    a?.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  if (expected.tensors.size === 0 || expected.optimizerState.size === 0) {
    throw new Error("the reference checkpoint holds no tensors or no optimizer state");
  }
  const differ: string[] = [];
  if (names(actual.tensors) !== names(expected.tensors)) differ.push("tensor names");
  for (const [name, values] of expected.tensors) {
    if (!same(actual.tensors.get(name), values)) differ.push(name);
  }
  if (names(actual.optimizerState) !== names(expected.optimizerState)) differ.push("states");
  for (const [state, byName] of expected.optimizerState) {
    const other = actual.optimizerState.get(state) ?? new Map();
    if (names(other) !== names(byName)) differ.push(`${state} names`);
    for (const [name, values] of byName) {
      if (!same(other.get(name), values)) differ.push(`${state} of ${name}`);
    }
  }
  if (differ.length) {
    throw new Error(`checkpoints differ in ${differ.length}: ${differ.slice(0, 5).join(", ")}`);
  }
}

/**
 * A Python that imports `module`, for the tests that check selfsup against PyTorch itself:
 * /usr/bin/python3 first (Debian's torch and torchvision are its, and a python3 first on PATH,
 * a virtual environment say, may not see them). Without one such a test is skipped and says
 * so, unless SELFSUP_REQUIRE_TORCH=1 (as .ci/run sets): then `python()` fails it.
 */
export function pythonWith(module: string): { ignore: boolean; python(): string } {
  const python = ["/usr/bin/python3", "python3"].find((exe) => {
    try {
      return new Deno.Command(exe, { args: ["-c", `import ${module}`], stderr: "null" })
        .outputSync().success;
    } catch {
      return false;
    }
  });
  return {
    ignore: !python && Deno.env.get("SELFSUP_REQUIRE_TORCH") !== "1",
    python() {
      if (python) return python;
      throw new Error(
        `SELFSUP_REQUIRE_TORCH=1, but no python3 imports ${module}: apt install python3-${module}`,
      );
    },
  };
}
