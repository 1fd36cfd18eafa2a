import type { Gpu, Program } from "../gpu/gpu.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { ParameterBlock } from "../nn/parameters.ts";
import { SelfsupError } from "../errors.ts";
import { Adam } from "./adam.ts";
import { Lars } from "./lars.ts";
import { Sgd } from "./sgd.ts";

/**
 * Updates every parameter of a {@link ParameterBlock} from its gradient with GPU kernels over
 * the flat block. The update is recorded once; the values that change from step to step
 * live in a small buffer that {@link Optimizer.prepare} writes, so the same recorded program
 * serves every step.
 */
export interface Optimizer {
  /** Records one update of every parameter from its gradient. */
  record(program: Program): void;
  /**
   * Sets the step number (counting from 1) and learning rate for the next run of the
   * recorded update; call before each submit.
   */
  prepare(step: number, learningRate: number): void;
  /**
   * Leaves the named parameters untouched — values and state — by the updates that follow,
   * until called again (an empty list frees them all), as PyTorch's optimizers skip a
   * parameter whose gradient is None (DINO's last layer and SwAV's prototypes in the first
   * epoch; see `MethodRun.frozen`). Like {@link Optimizer.prepare}, it applies from the next
   * submit. Every optimizer then matches PyTorch: Adam's bias corrections count each
   * parameter's own updates (its `step` state), which a frozen parameter does not advance.
   */
  freeze(names: readonly string[]): void;
  /**
   * State tensors by name, for checkpoints and exact resume: flat, in the parameter block's
   * layout, or one value per parameter (Adam's `step`).
   */
  readonly state: ReadonlyMap<string, Tensor>;
  /** Returns the optimizer's buffers, its state included, to the pool. */
  destroy(): void;
}

/**
 * Which optimizer, with its hyperparameters; those left out take the defaults of the
 * reference implementation (PyTorch for adam, adamw and sgd; SimCLR's LARS for lars):
 *
 * - adam: `betas` [0.9, 0.999], `eps` 1e-8, `weightDecay` 0 (L2, added to the gradient)
 * - adamw: as adam but `weightDecay` 0.01, decoupled (p ← p·(1 − lr·wd) before the update)
 * - sgd: `momentum` 0, `weightDecay` 0 (dampening 0, not Nesterov)
 * - lars: `momentum` 0.9, `weightDecay` 0, `trustCoefficient` 0.001
 *
 * `excludeBiasAndNorm` keeps weight decay (and LARS's trust ratio) off biases and
 * normalisation parameters: true by default for lars (SimCLR's LARS), false for the others
 * (PyTorch's optimizers decay every parameter they are given).
 *
 * `lrScale`, for every optimizer, gives each parameter (by its name in the block) a learning
 * rate of its own, the run's times the scale, as a PyTorch parameter group with `lr_scale`
 * gets (AdamW's decoupled decay scales with it, lr·wd); 1 for every parameter when left out.
 * `vitLayerDecay` (layer_decay.ts) makes MAE's layer-wise decay for fine-tuning a ViT.
 */
export type OptimizerConfig = {
  name: "adam" | "adamw" | "sgd" | "lars";
  weightDecay?: number;
  excludeBiasAndNorm?: boolean;
  momentum?: number;
  betas?: [number, number];
  eps?: number;
  trustCoefficient?: number;
  lrScale?: (parameter: string) => number;
};

const accepted: Record<OptimizerConfig["name"], readonly (keyof OptimizerConfig)[]> = {
  adam: ["weightDecay", "excludeBiasAndNorm", "betas", "eps", "lrScale"],
  adamw: ["weightDecay", "excludeBiasAndNorm", "betas", "eps", "lrScale"],
  sgd: ["weightDecay", "excludeBiasAndNorm", "momentum", "lrScale"],
  lars: ["weightDecay", "excludeBiasAndNorm", "momentum", "trustCoefficient", "lrScale"],
};

/**
 * Makes the optimizer `config` names for the parameters of `block`, with its state zeroed.
 *
 * @example
 * ```ts ignore
 * const optimizer = createOptimizer(gpu, block, { name: "lars", weightDecay: 1e-6 });
 * optimizer.record(step);
 * for (let i = 0; i < steps; i++) {
 *   optimizer.prepare(i + 1, learningRate(i, schedule));
 *   gpu.submit(step);
 * }
 * ```
 */
export function createOptimizer(
  gpu: Gpu,
  block: ParameterBlock,
  config: OptimizerConfig,
): Optimizer {
  const keys = accepted[config.name];
  if (!keys) {
    throw new SelfsupError(`Unknown optimizer ${config.name}: use adam, adamw, sgd or lars`);
  }
  for (const key of Object.keys(config) as (keyof OptimizerConfig)[]) {
    if (key !== "name" && config[key] !== undefined && !keys.includes(key)) {
      throw new SelfsupError(`Optimizer ${config.name} does not take ${key}`);
    }
  }
  const weightDecay = nonNegative(
    "weightDecay",
    config.weightDecay ?? (config.name === "adamw" ? 0.01 : 0),
  );
  const excludeBiasAndNorm = config.excludeBiasAndNorm ?? config.name === "lars";
  const lrScale = config.lrScale;
  switch (config.name) {
    case "adam":
    case "adamw": {
      const [beta1, beta2] = config.betas ?? [0.9, 0.999];
      for (const beta of [beta1, beta2]) {
        if (!(beta >= 0 && beta < 1)) {
          throw new SelfsupError(`Adam betas must lie in [0, 1), got [${config.betas}]`);
        }
      }
      const eps = nonNegative("eps", config.eps ?? 1e-8);
      return new Adam(gpu, block, {
        beta1,
        beta2,
        eps,
        weightDecay,
        decoupled: config.name === "adamw",
        excludeBiasAndNorm,
        lrScale,
      });
    }
    case "sgd":
      return new Sgd(gpu, block, {
        momentum: nonNegative("momentum", config.momentum ?? 0),
        weightDecay,
        excludeBiasAndNorm,
        lrScale,
      });
    case "lars": {
      const trustCoefficient = nonNegative("trustCoefficient", config.trustCoefficient ?? 0.001);
      const momentum = nonNegative("momentum", config.momentum ?? 0.9);
      return new Lars(gpu, block, {
        momentum,
        weightDecay,
        trustCoefficient,
        excludeBiasAndNorm,
        lrScale,
      });
    }
  }
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new SelfsupError(`Optimizer ${name} must be a finite number ≥ 0, got ${value}`);
  }
  return value;
}
