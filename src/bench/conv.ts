/**
 * Throughput of the convolution kernels at the shapes of a ResNet-18.
 *
 * @module
 */
import { type Gpu, Program } from "../gpu/gpu.ts";
import {
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dForward,
  conv2dOutputSize,
  type Conv2dVariant,
} from "../nn/conv2d.ts";

/** The measured speed of one pass of one convolution shape. */
export interface ConvBenchRow {
  /** Layer, kernel, stride, channels and input size, e.g. "layer2 3×3 s1 128→128 16×16". */
  readonly name: string;
  readonly pass: "forward" | "backward_input" | "backward_weight";
  /** How many convolutions of this shape one ResNet-18 forward pass runs. */
  readonly count: number;
  /** Floating-point operations of one pass, in units of 10⁹ (2 per multiply-add). */
  readonly gflop: number;
  /** Steady-state (median) time of one pass, weight packing and split-K reduction included. */
  readonly milliseconds: number;
  readonly gflops: number;
}

/** Options of {@link benchConv}. */
export interface ConvBenchOptions {
  readonly batch: number;
  /** Channels of the first stage (64 in the standard ResNet-18). */
  readonly width: number;
  /** "cifar": 3×3 stem, no max pool; "imagenet": 7×7 stride-2 stem and a 3×3 stride-2 max pool. */
  readonly stem: "cifar" | "imagenet";
  /** Side of the square input images. Default 32. */
  readonly imageSize?: number;
  /** Measuring time per shape and pass, after a warm-up. Default 1. */
  readonly seconds?: number;
  /** Kernel family; by default the one chosen for the adapter. */
  readonly variant?: Conv2dVariant;
}

interface ConvShape {
  name: string;
  count: number;
  cin: number;
  cout: number;
  size: number;
  k: number;
  stride: number;
  padding: number;
}

// Each submit should run long enough that the ~11 ms sync after it is a small overhead.
const submitSeconds = 0.25;
const maxRepeats = 256;

/**
 * Times forward, input-gradient and weight-gradient passes over the distinct convolution
 * shapes of a ResNet-18 of the given width, batch and stem: each pass is recorded once,
 * repeated in one program, submitted and synced until `seconds` have passed, after one
 * warm-up run that also compiles the pipelines; the median submit gives the time.
 *
 * @example
 * ```ts ignore
 * import { createGpu } from "../gpu/device.ts";
 * import { benchConv } from "./conv.ts";
 * const gpu = await createGpu();
 * for (const row of await benchConv(gpu, { batch: 64, width: 64, stem: "cifar" })) {
 *   console.log(row.name, row.pass, row.gflops.toFixed(1));
 * }
 * ```
 */
export async function benchConv(gpu: Gpu, options: ConvBenchOptions): Promise<ConvBenchRow[]> {
  const { batch, seconds = 1, variant } = options;
  const rows: ConvBenchRow[] = [];
  for (const shape of resnet18Shapes(options)) {
    const { cin, cout, size, k, stride, padding } = shape;
    const out = conv2dOutputSize(size, k, stride, padding);
    const gflop = (2 * batch * cout * out * out * cin * k * k) / 1e9;
    const conv = { stride, padding, variant };
    const setup = new Program(gpu, `bench ${shape.name}`);
    const x = setup.tensor([batch, cin, size, size], "x");
    const weight = setup.tensor([cout, cin, k, k], "weight");
    const gradY = setup.tensor([batch, cout, out, out], "output gradient");
    const gradWeight = setup.tensor([cout, cin, k, k], "weight gradient");
    gpu.write(x, noise(x.size));
    gpu.write(weight, noise(weight.size));
    gpu.write(gradY, noise(gradY.size));
    const passes = {
      forward: (p: Program) => void conv2dForward(p, x, weight, conv),
      backward_input: (p: Program) => void conv2dBackwardInput(p, gradY, weight, x.shape, conv),
      backward_weight: (p: Program) => conv2dBackwardWeight(p, x, gradY, gradWeight, conv),
    };
    for (const [pass, record] of Object.entries(passes)) {
      const once = new Program(gpu, `bench ${shape.name} ${pass}`);
      record(once);
      const milliseconds = await timeProgram(gpu, once, seconds);
      rows.push({
        name: shape.name,
        pass: pass as ConvBenchRow["pass"],
        count: shape.count,
        gflop,
        milliseconds,
        gflops: gflop / (milliseconds / 1000),
      });
      once.destroy();
    }
    setup.destroy();
  }
  return rows;
}

/**
 * The steady-state (median) milliseconds of one run of `once`: run once as a warm-up that
 * also compiles pipelines, then repeated in one program and submitted until `seconds` pass.
 */
export async function timeProgram(gpu: Gpu, once: Program, seconds: number): Promise<number> {
  const warmup = performance.now();
  gpu.submit(once);
  await gpu.sync();
  const first = (performance.now() - warmup) / 1000;
  const repeats = Math.max(1, Math.min(maxRepeats, Math.ceil(submitSeconds / first)));
  const repeated = new Program(gpu, `${once.label} ×${repeats}`);
  for (let i = 0; i < repeats; i++) repeated.append(once);
  // The median submit, so that a burst of other work on a shared machine does not count.
  const samples: number[] = [];
  const start = performance.now();
  do {
    const begin = performance.now();
    gpu.submit(repeated);
    await gpu.sync();
    samples.push((performance.now() - begin) / repeats);
  } while (performance.now() - start < seconds * 1000);
  repeated.destroy();
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

/** The distinct convolutions of ResNet-18 in order, named by the first layer using each. */
export function resnet18Shapes(
  { width: w, stem, imageSize = 32 }: ConvBenchOptions,
): ConvShape[] {
  const shapes: ConvShape[] = [];
  const add = (
    layer: string,
    count: number,
    cin: number,
    cout: number,
    size: number,
    k: number,
    stride: number,
  ) => {
    const name = `${layer} ${k}×${k} s${stride} ${cin}→${cout} ${size}×${size}`;
    shapes.push({ name, count, cin, cout, size, k, stride, padding: (k - 1) / 2 });
  };
  let size = imageSize;
  if (stem === "cifar") {
    add("conv1", 1, 3, w, size, 3, 1);
  } else {
    add("conv1", 1, 3, w, size, 7, 2);
    size = conv2dOutputSize(conv2dOutputSize(size, 7, 2, 3), 3, 2, 1);
  }
  add("layer1", 4, w, w, size, 3, 1);
  let cin = w;
  for (const stage of [2, 3, 4]) {
    const cout = cin * 2;
    const out = conv2dOutputSize(size, 3, 2, 1);
    add(`layer${stage}`, 1, cin, cout, size, 3, 2);
    add(`layer${stage}`, 3, cout, cout, out, 3, 1);
    add(`layer${stage}`, 1, cin, cout, size, 1, 2);
    cin = cout;
    size = out;
  }
  return shapes;
}

/** Deterministic values of unit scale, so timings never meet denormals or NaNs. */
export function noise(count: number): Float32Array<ArrayBuffer> {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = Math.sin(i * 12.9898) * 0.5;
  return values;
}
