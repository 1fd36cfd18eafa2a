import { BatchNorm1d } from "./batch_norm.ts";
import { Linear } from "./linear.ts";
import { ReLU } from "./relu.ts";
import { Sequential } from "./sequential.ts";

/**
 * The MLP heads of self-supervised methods: Linear → (BatchNorm1d →) ReLU → Linear, named
 * as a PyTorch `nn.Sequential` (`0`, `1`, … with the ReLU counted). SimCLR's and MoCo v2's
 * projection heads have no batch norm; BYOL's projector and predictor do.
 */
export function projectionHead(
  inputDim: number,
  hiddenDim: number,
  outputDim: number,
  { batchNorm = false }: { readonly batchNorm?: boolean } = {},
): Sequential {
  return new Sequential([
    new Linear(inputDim, hiddenDim),
    ...(batchNorm ? [new BatchNorm1d(hiddenDim)] : []),
    new ReLU(),
    new Linear(hiddenDim, outputDim),
  ]);
}
