/**
 * Speed of a Vision Transformer: whole training steps, and the attention, LayerNorm and
 * linear kernels at the step's shapes.
 *
 * @module
 */
import { type Gpu, Program } from "../gpu/gpu.ts";
import { attentionBackward, attentionForward } from "../nn/attention.ts";
import {
  layerNormBackwardInput,
  layerNormBackwardWeight,
  layerNormForward,
} from "../nn/layer_norm.ts";
import { linearBackwardInput, linearBackwardWeight, linearForward } from "../nn/linear.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { mlpWidth, VisionTransformer, type VitConfig } from "../nn/vit.ts";
import { createOptimizer } from "../optim/optimizer.ts";
import { noise, timeProgram } from "./conv.ts";
import { type StepFigures, timeStep } from "./step.ts";

/** What to time. */
export interface VitBenchOptions {
  readonly config: VitConfig;
  /** Images per step. */
  readonly batch: number;
  /** Measuring time of the step, and of each kernel pass after a warm-up. Default 3 and 1. */
  readonly seconds?: number;
  readonly kernelSeconds?: number;
}

/** The measured speed of one pass of one kernel family at the step's shape. */
export interface VitKernelRow {
  /** e.g. "attention", "layer norm", "linear fc1 128→512". */
  readonly name: string;
  readonly pass: "forward" | "backward" | "backward_input" | "backward_weight";
  readonly gflop: number;
  readonly milliseconds: number;
  readonly gflops: number;
}

/** Step and kernel figures of one configuration. */
export interface VitBenchResult {
  readonly config: VitConfig;
  readonly batch: number;
  readonly step: StepFigures;
  readonly kernels: VitKernelRow[];
}

/**
 * Times whole steps — forward, backward from a fixed gradient of the features, Adam — each
 * recorded once and submitted as one command buffer, then each kernel family's passes at the
 * step's shapes.
 *
 * @example
 * ```ts ignore
 * import { createGpu } from "../gpu/device.ts";
 * import { vitSmallDefault } from "../nn/vit.ts";
 * import { benchVit } from "./vit.ts";
 * const gpu = await createGpu();
 * const { step } = await benchVit(gpu, { config: vitSmallDefault, batch: 64 });
 * console.log(step.milliseconds.toFixed(0), "ms per step");
 * ```
 */
export async function benchVit(gpu: Gpu, options: VitBenchOptions): Promise<VitBenchResult> {
  const step = await benchStep(gpu, options);
  const kernels = await benchKernels(gpu, options);
  return { config: options.config, batch: options.batch, step, kernels };
}

async function benchStep(gpu: Gpu, options: VitBenchOptions): Promise<StepFigures> {
  const { config, batch } = options;
  const before = gpu.bytesInUse;
  const model = new VisionTransformer(config);
  const block = new ParameterBlock(gpu, model.entries());
  let seed = 1;
  block.initialize(() => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646);
  const optimizer = createOptimizer(gpu, block, { name: "adam" });
  const program = new Program(gpu, "bench vit step");
  try {
    const size = config.imageSize;
    const images = program.tensor([batch, 3, size, size], "images");
    const gradFeatures = program.tensor([batch, model.featureDim], "feature gradient");
    program.clear(block.grads);
    const pass = model.forward(program, images, { train: true, inputGrad: false });
    program.keep(pass.output);
    pass.backward(program, gradFeatures);
    optimizer.record(program);
    gpu.write(images, noise(images.size));
    gpu.write(gradFeatures, noise(gradFeatures.size).map((v) => v * 1e-3));
    return await timeStep(gpu, program, (t) => optimizer.prepare(t + 1, 1e-4), pass.output, {
      images: batch,
      gflop: vitStepFlops(config, batch) / 1e9,
      seconds: options.seconds ?? 3,
      bytesBefore: before,
    });
  } finally {
    program.destroy();
    optimizer.destroy();
    block.destroy();
  }
}

// FLOPs counted per element of a layer norm: forward mean, centred squares and
// scale-and-shift; backward the two row sums, the input gradient and the γ and β sums.
const layerNormFlops = { forward: 8, backward: 13 };

async function benchKernels(gpu: Gpu, options: VitBenchOptions): Promise<VitKernelRow[]> {
  const { config, batch } = options;
  const seconds = options.kernelSeconds ?? 1;
  const d = config.dim;
  const t = 1 + (config.imageSize / config.patchSize) ** 2;
  const rows = batch * t;
  const hidden = mlpWidth(d, config.mlpRatio ?? 4);
  const setup = new Program(gpu, "bench vit kernels");
  const input = (shape: number[], label: string) => {
    const tensor = setup.tensor(shape, label);
    gpu.write(tensor, noise(tensor.size));
    return tensor;
  };
  const out: VitKernelRow[] = [];
  const measure = async (
    name: string,
    pass: VitKernelRow["pass"],
    flops: number,
    record: (p: Program) => void,
  ) => {
    const once = new Program(gpu, `bench ${name} ${pass}`);
    record(once);
    const milliseconds = await timeProgram(gpu, once, seconds);
    once.destroy();
    const gflop = flops / 1e9;
    out.push({ name, pass, gflop, milliseconds, gflops: gflop / (milliseconds / 1000) });
  };
  try {
    const qkv = input([batch, t, 3 * d], "qkv");
    const gradOut = input([batch, t, d], "attention output gradient");
    const attentionFlops = 4 * batch * t * t * d; // q·kᵀ and P·v
    await measure("attention", "forward", attentionFlops, (p) => {
      attentionForward(p, qkv, config.heads);
    });
    await measure("attention", "backward", 2 * attentionFlops, (p) => {
      // The forward pass runs too (its probabilities are a temporary); its time is the row above.
      attentionBackward(p, attentionForward(p, qkv, config.heads).saved, gradOut);
    });
    const x = input([rows, d], "tokens");
    const gamma = input([d], "γ");
    const beta = input([d], "β");
    const gradGamma = input([d], "γ gradient");
    const gradBeta = input([d], "β gradient");
    const elements = rows * d;
    await measure("layer norm", "forward", layerNormFlops.forward * elements, (p) => {
      layerNormForward(p, x, gamma, beta, 1e-6);
    });
    await measure("layer norm", "backward", layerNormFlops.backward * elements, (p) => {
      const { saved } = layerNormForward(p, x, gamma, beta, 1e-6);
      layerNormBackwardInput(p, saved, gradOut.reshape([rows, d]), gamma);
      layerNormBackwardWeight(p, saved, gradOut.reshape([rows, d]), gradGamma, gradBeta);
    });
    const linears: [string, number, number][] = [
      ["qkv", d, 3 * d],
      ["proj", d, d],
      ["fc1", d, hidden],
      ["fc2", hidden, d],
    ];
    for (const [layer, inputs, outputs] of linears) {
      const name = `linear ${layer} ${inputs}→${outputs}`;
      const xs = input([rows, inputs], `${layer} input`);
      const w = input([outputs, inputs], `${layer} weight`);
      const b = input([outputs], `${layer} bias`);
      const gy = input([rows, outputs], `${layer} output gradient`);
      const gw = input([outputs, inputs], `${layer} weight gradient`);
      const gb = input([outputs], `${layer} bias gradient`);
      const flops = 2 * rows * inputs * outputs;
      await measure(name, "forward", flops, (p) => void linearForward(p, xs, w, b));
      await measure(name, "backward_input", flops, (p) => void linearBackwardInput(p, gy, w));
      await measure(name, "backward_weight", flops, (p) => linearBackwardWeight(p, xs, gy, gw, gb));
    }
  } finally {
    setup.destroy();
  }
  return out;
}

/**
 * Multiply-add FLOPs (2 per MAC) of one ViT step on `batch` images: the linear layers and
 * attention's two batched products, forward and twice again backward, and the patch
 * embedding forward and weight gradient. LayerNorm, GELU, softmax and the optimizer are
 * memory-bound and left out, as is customary.
 */
export function vitStepFlops(config: VitConfig, batch: number): number {
  const d = config.dim;
  const patches = (config.imageSize / config.patchSize) ** 2;
  const t = 1 + patches;
  const hidden = mlpWidth(d, config.mlpRatio ?? 4);
  const linear = 2 * t * d * (3 * d + d + 2 * hidden);
  const attention = 4 * t * t * d;
  const patchEmbed = 2 * patches * 3 * config.patchSize ** 2 * d;
  return batch * (3 * config.depth * (linear + attention) + 2 * patchEmbed);
}
