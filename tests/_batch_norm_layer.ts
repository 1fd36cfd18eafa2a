// One BatchNorm2d layer's forward and backward over a PyTorch fixture's case, in either
// precision: shared by the fused (f32) and the f16 batch norm tests.
import { type AdapterClass, type HostValues, Program } from "../src/gpu/gpu.ts";
import type { Precision } from "../src/gpu/kernel.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { BatchNorm2d } from "../src/nn/batch_norm.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { familyGpu, type Fixture } from "./_util.ts";

/**
 * Runs case `name` of a fixture laid out as make_batch_norm_fused.py's (x, r the output
 * gradient, s the shortcut of a residual case, the parameters and running statistics) through
 * the layer: forward with `relu`, or forwardResidual where the case has s; `split` through 2
 * groups. The activations are written in `precision`; returns the output, the input and
 * residual gradients, the parameter gradients and the parameters and statistics after.
 */
export async function batchNormLayerCase(
  fixture: Fixture,
  adapterClass: AdapterClass,
  name: string,
  { train, relu, precision }: { train: boolean; relu: boolean; precision: Precision },
): Promise<{
  y: HostValues;
  gx: HostValues;
  gs?: HostValues;
  grads: Map<string, Float32Array>;
  values: Map<string, Float32Array>;
}> {
  const gpu = await familyGpu(adapterClass);
  const f = (key: string) => fixture.get(`${name}.${key}`);
  const shape = fixture.shape(`${name}.x`);
  const layer = new BatchNorm2d(shape[1], { momentum: 0.1, eps: 1e-5 });
  const block = new ParameterBlock(gpu, layer.entries());
  const names = ["weight", "bias", "running_mean", "running_var"];
  block.load(new Map(names.map((n) => [n, f(n)])), `batch norm fixture ${name}`);
  gpu.write(block.grads, new Float32Array(block.grads.size));
  const program = new Program(gpu, `${precision} batch norm ${name} (${adapterClass} kernels)`);
  const input = (key: string) => {
    const t = program.tensor(shape, key, precision);
    gpu.write(t, precision === "f16" ? Float16Array.from(f(key)) : f(key).slice());
    return t;
  };
  const x = input("x");
  const gy = input("r");
  const options = { train, inputGrad: true, batchNormSplits: name === "split" ? 2 : 1 };
  let output: Tensor;
  const grads: Tensor[] = [];
  if (fixture.has(`${name}.s`)) {
    const pass = layer.forwardResidual(program, x, input("s"), options);
    output = pass.output;
    const { input: gx, residual } = pass.backward(program, gy);
    grads.push(gx()!, residual);
  } else {
    const pass = layer.forward(program, x, options, { relu });
    output = pass.output;
    grads.push(pass.backward(program, gy)!);
  }
  program.keep(output, ...grads);
  gpu.submit(program);
  const [y, gx, gs] = await gpu.read(output, ...grads);
  const result = { y, gx, gs, grads: await block.readGrads(), values: await block.read() };
  program.destroy();
  block.destroy();
  return result;
}
