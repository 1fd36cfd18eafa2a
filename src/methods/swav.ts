import type { ViewGroup } from "../data/views.ts";
import type { Program } from "../gpu/gpu.ts";
import { queueWriteKernel } from "../gpu/kernels/embedding.ts";
import { StepValues } from "../gpu/step_values.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { multicropCrossEntropy } from "../loss/multicrop_cross_entropy.ts";
import { sinkhornCodes } from "../loss/sinkhorn.ts";
import { type Backbone, type BackboneConfig, createBackbone } from "../nn/backbone.ts";
import { concatRows, sliceRows } from "../nn/concat.ts";
import { uniform } from "../nn/init.ts";
import { l2NormalizeBackward, l2NormalizeForward, l2NormalizeInPlace } from "../nn/l2_normalize.ts";
import { Linear, linearForward } from "../nn/linear.ts";
import { type Entry, type Initializer, prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { projectionHead } from "../nn/projection_head.ts";
import type { Sequential } from "../nn/sequential.ts";
import { SelfsupError } from "../errors.ts";
import { assertLocalCropsFit, localCropOptions, multicropPasses } from "./_multicrop.ts";
import {
  checkOptions,
  initializeBlock,
  type Method,
  soloLarsRecipe,
  type StepInputs,
} from "./method.ts";

/** SwAV's options. */
export interface SwavOptions {
  readonly projectionDim: number;
  readonly hiddenDim: number;
  /** K, the prototypes. */
  readonly prototypes: number;
  readonly temperature: number;
  /** ε of Sinkhorn–Knopp's entropic regularisation, and its iterations. */
  readonly epsilon: number;
  readonly sinkhornIterations: number;
  /** Earlier embeddings of each global crop kept for the codes; 0: no queue. */
  readonly queueSize: number;
  /** The epoch from which the queue fills; it takes part once full. */
  readonly queueStartEpoch: number;
  /** Epochs during which the prototypes are not updated. */
  readonly freezePrototypesEpochs: number;
  readonly localCrops: number;
  /** Side of the local crops (default: half the image's). */
  readonly localSize?: number;
}

/** `nn.Linear`'s initial weight with each row then brought to unit length, as SwAV's first step does. */
function unitRows(cols: number): Initializer {
  const draw = uniform(1 / Math.sqrt(cols));
  return (size, random) => {
    const values = draw(size, random);
    for (let row = 0; row < size; row += cols) {
      let sum = 0;
      for (let j = row; j < row + cols; j++) sum += values[j] * values[j];
      const norm = Math.max(Math.sqrt(sum), 1e-12);
      for (let j = row; j < row + cols; j++) values[j] /= norm;
    }
    return values;
  };
}

/** A backbone, SwAV's projector (Linear–BN–ReLU–Linear) and its bias-free prototypes. */
class SwavNetwork {
  readonly backbone: Backbone;
  readonly projector: Sequential;
  readonly prototypes: Linear;

  constructor(backbone: BackboneConfig, options: SwavOptions) {
    this.backbone = createBackbone(backbone);
    this.projector = projectionHead(
      this.backbone.featureDim,
      options.hiddenDim,
      options.projectionDim,
      { batchNorm: true },
    );
    this.prototypes = new Linear(options.projectionDim, options.prototypes, {
      weight: unitRows(options.projectionDim),
      bias: null,
    });
  }

  entries(): Entry[] {
    return [
      ...prefixed("backbone", this.backbone),
      ...prefixed("projector", this.projector),
      ...prefixed("prototypes", this.prototypes),
    ];
  }
}

/** The crops whose codes are targets (SwAV's `crops_for_assign`: the two global crops). */
const assigned = 2;

/**
 * SwAV (Caron et al. 2020; facebookresearch/swav main_swav.py): each crop's L2-normalised
 * projection z is scored against K unit prototypes, and every crop predicts, at temperature
 * `temperature`, the codes of each global crop of the same image (pairs of a crop with
 * itself skipped): soft assignments of the global crops' embeddings to the prototypes by
 * `sinkhornIterations` of Sinkhorn–Knopp (ε = `epsilon`, no gradient), equipartitioned over
 * the batch and, once full, a queue of the `queueSize` previous embeddings of that crop
 * (filled from epoch `queueStartEpoch` on). The prototypes are brought back to unit length
 * after every optimiser step — the same sequence as SwAV's normalisation at the start of
 * each step, the initial prototypes being unit rows — and are not updated during the first
 * `freezePrototypesEpochs` epochs (see `frozen`). The projector's batch norm sees all crops
 * at once, as SwAV's multi-resolution forward runs its head.
 *
 * The queue is a ring per global crop, written every step at a slot set by the step (the
 * paper's queue shifts; the order of its rows changes only the order of Sinkhorn's sums);
 * from the start epoch, its rows are those of the last `queueSize / N` steps once that many
 * have run, when it takes part.
 */
export const swav: Method<SwavOptions> = {
  name: "swav",
  title: "SwAV",
  encoder: "the backbone",
  // main_swav.py's defaults (3000 prototypes, feat_dim 128, hidden_mlp 2048, ε 0.05, three
  // iterations, temperature 0.1, no queue, queue from epoch 15; multi-crop 2 + 6), with the
  // prototypes frozen for the first epoch as solo-learn's default (SwAV: 313 iterations).
  defaults: {
    projectionDim: 128,
    hiddenDim: 2048,
    prototypes: 3000,
    temperature: 0.1,
    epsilon: 0.05,
    sinkhornIterations: 3,
    queueSize: 0,
    queueStartEpoch: 15,
    freezePrototypesEpochs: 1,
    localCrops: 6,
  },
  options: [
    {
      key: "projectionDim",
      flag: "--projection-dim",
      kind: "positiveInteger",
      description: "size of the normalised projection",
    },
    {
      key: "hiddenDim",
      flag: "--hidden-dim",
      kind: "positiveInteger",
      description: "hidden size of the projector",
    },
    {
      key: "prototypes",
      flag: "--prototypes",
      kind: "positiveInteger",
      description: "number of prototypes K",
    },
    {
      key: "temperature",
      flag: "--temperature",
      kind: "positiveNumber",
      description: "temperature of the swapped prediction",
    },
    {
      key: "epsilon",
      flag: "--epsilon",
      kind: "positiveNumber",
      description: "Sinkhorn–Knopp's entropic regularisation",
    },
    {
      key: "sinkhornIterations",
      flag: "--sinkhorn-iterations",
      kind: "positiveInteger",
      description: "Sinkhorn–Knopp iterations",
    },
    {
      key: "queueSize",
      flag: "--queue-size",
      kind: "nonNegativeInteger",
      description: "earlier embeddings of each global crop for the codes (0: no queue)",
    },
    {
      key: "queueStartEpoch",
      flag: "--queue-start-epoch",
      kind: "nonNegativeInteger",
      description: "epoch from which the queue fills (it is used once full)",
    },
    {
      key: "freezePrototypesEpochs",
      flag: "--freeze-prototypes",
      kind: "nonNegativeInteger",
      description: "epochs during which the prototypes are not updated",
    },
    ...localCropOptions,
  ],
  recipes: {
    // solo-learn scripts/pretrain/cifar/swav.yaml (symmetric augmentations, two crops).
    cifar: {
      augmentation: "solo-symmetric",
      projectionDim: 128,
      hiddenDim: 2048,
      prototypes: 3000,
      temperature: 0.1,
      queueSize: 3840,
      queueStartEpoch: 50,
      freezePrototypesEpochs: 2,
      localCrops: 0,
      ...soloLarsRecipe,
      learningRate: 0.6,
      weightDecay: 1e-6,
    },
    // A narrow network on the synthetic set: a projector sized to its 128 features, and
    // ε 0.03 with six local crops, as the authors' 2 + 6 (ε 0.05 alone stayed at ln K for 5
    // epochs there; a smaller ε is the authors' README's remedy for a loss that does not
    // decrease). With two local crops it beat random init on the synthetic set but not on
    // the CIFAR-10 slice's probe; with six on both (README, results).
    synthetic: { hiddenDim: 512, prototypes: 1000, epsilon: 0.03, localCrops: 6 },
  },
  validate(options, batchSize) {
    const checked = checkOptions(this, options);
    if (checked.queueSize % batchSize !== 0) {
      throw new SelfsupError(
        `--queue-size ${checked.queueSize} must be a multiple of the ${batchSize} embeddings ` +
          `each global crop adds a step (--batch-size)`,
      );
    }
    return checked;
  },
  views(options, base) {
    // SwAV's multi-crop: RandomResizedCrop of scale (0.14, 1) for the global crops and
    // (0.05, 0.14) for the local ones, the same colour distortion on all (the run's recipe).
    const crop = (scale: readonly [number, number]) => ({
      scale,
      ratio: base.crop?.ratio ?? [3 / 4, 4 / 3] as const,
    });
    const global = { ...base, crop: crop([0.14, 1]) };
    const groups: ViewGroup[] = [{ count: 1, augment: global }, { count: 1, augment: global }];
    if (options.localCrops > 0) {
      const side = (s: number) => options.localSize ?? Math.max(1, Math.round(s / 2));
      groups.push({
        count: options.localCrops,
        augment: {
          ...base,
          height: side(base.height),
          width: side(base.width),
          crop: crop([0.05, 0.14]),
        },
      });
    }
    return groups;
  },
  build({ gpu, backbone, batchSize, stepsPerEpoch, seed }, options) {
    assertLocalCropsFit(backbone, options.localCrops, "SwAV");
    const network = new SwavNetwork(backbone, options);
    const trainable = new ParameterBlock(gpu, network.entries());
    initializeBlock(trainable, seed);
    const n = batchSize;
    const { queueSize, projectionDim: d, prototypes: k } = options;
    const queues = queueSize > 0
      ? Array.from({ length: assigned }, (_, i) => {
        const queue = gpu.tensor([queueSize, d], `SwAV queue ${i + 1}`);
        gpu.write(queue, new Float32Array(queue.size));
        return queue;
      })
      : [];
    // Rows of the queue left out of Sinkhorn–Knopp (all of it until full), and where the
    // step's embeddings enter it.
    const skip = new StepValues(gpu, ["skip"], "SwAV queue rows left out");
    const slot = new StepValues(gpu, ["slot"], "SwAV queue slot");
    const prototypes = network.prototypes.weight;
    const training = { train: true, inputGrad: true };

    return {
      backbone: network.backbone,
      trainable,
      state: new Map<string, ParameterBlock | Tensor>(
        queues.map((queue, i) => [`queue.${i}`, queue]),
      ),
      collapseLoss: Math.log(k),
      // The SwAV authors' README: a loss that does not decrease wants a smaller ε.
      collapseHint: "Try a smaller --epsilon (0.03), local crops or a lower --lr",
      record(program: Program, { views }: StepInputs) {
        const crops = multicropPasses(program, network.backbone, views);
        if (crops.images !== n) {
          throw new Error(`SwAV was built for batches of ${n}, got ${crops.images} images`);
        }
        const projected = network.projector.forward(program, crops.features, training);
        const z = l2NormalizeForward(program, projected.output);
        const scores = network.prototypes.forward(program, z.y, training);
        const codes = program.temp([assigned * n, k], "SwAV codes");
        const embeddings = Array.from(
          { length: assigned },
          (_, i) => sliceRows(program, z.y, i * n, n),
        );
        embeddings.forEach((embedding, i) => {
          // The queue's scores against the current prototypes, before the batch's own.
          const samples = queues.length
            ? linearForward(
              program,
              concatRows(program, [queues[i], embedding]),
              prototypes.value,
              null,
            )
            : sliceRows(program, scores.output, i * n, n);
          sinkhornCodes(program, samples, skip, codes, {
            kept: n,
            codesRow: i * n,
            iterations: options.sinkhornIterations,
            epsilon: options.epsilon,
          });
        });
        // The step's embeddings enter the queue after its scores were taken.
        queues.forEach((queue, i) => {
          program.dispatch(
            queueWriteKernel,
            [slot.tensor, embeddings[i], queue],
            Math.ceil(embeddings[i].size / 256),
            [n, d, queueSize],
          );
        });
        const { loss, gradInput } = multicropCrossEntropy(program, scores.output, codes, {
          crops: crops.crops,
          targetCrops: assigned,
          temperature: options.temperature,
        });
        const gradZ = scores.backward(program, gradInput)!;
        const gradProjection = l2NormalizeBackward(program, z.y, z.norms, gradZ);
        crops.backward(program, projected.backward(program, gradProjection)!);
        const monitored = sliceRows(program, z.y, 0, assigned * n);
        program.keep(loss, monitored);
        return { loss, embeddings: monitored };
      },
      recordAfterUpdate(program) {
        l2NormalizeInPlace(program, prototypes.value);
      },
      prepare(step) {
        const filling = step - options.queueStartEpoch * stepsPerEpoch;
        const full = queueSize > 0 && filling >= queueSize / n;
        skip.write({ skip: full ? 0 : queueSize });
        slot.write({ slot: queueSize > 0 ? (step * n) % queueSize : 0 });
      },
      frozen(step) {
        return step < options.freezePrototypesEpochs * stepsPerEpoch ? ["prototypes.weight"] : [];
      },
      destroy() {
        for (const queue of queues) gpu.release(queue.buffer);
        skip.destroy();
        slot.destroy();
        trainable.destroy();
      },
    };
  },
};
