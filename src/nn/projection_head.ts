import { Linear } from "./linear.ts";
import { ReLU } from "./relu.ts";
import { Sequential } from "./sequential.ts";

/**
 * SimCLR's projection head g(·): Linear → ReLU → Linear, named `0` and `2` as in a PyTorch
 * `nn.Sequential`. The contrastive loss sees its output; evaluation uses the features before it.
 */
export function projectionHead(
  featureDim: number,
  hiddenDim: number,
  outputDim: number,
): Sequential {
  return new Sequential([
    new Linear(featureDim, hiddenDim),
    new ReLU(),
    new Linear(hiddenDim, outputDim),
  ]);
}
