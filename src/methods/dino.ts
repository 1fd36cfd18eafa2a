import { multiCropGroups } from "../data/views.ts";
import type { Program } from "../gpu/gpu.ts";
import { StepValues } from "../gpu/step_values.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { dinoTeacherTargets, updateDinoCenter } from "../loss/dino.ts";
import { multicropCrossEntropy } from "../loss/multicrop_cross_entropy.ts";
import { type Backbone, type BackboneConfig, createBackbone } from "../nn/backbone.ts";
import { sliceRows } from "../nn/concat.ts";
import { DinoHead } from "../nn/dino_head.ts";
import { type Entry, prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { GradientClip } from "../optim/clip.ts";
import { emaRate, EmaUpdate } from "../optim/ema.ts";
import { assertLocalCropsFit, localCropOptions, multicropPasses } from "./_multicrop.ts";
import {
  checkMomentumSchedule,
  checkOptions,
  initializeBlock,
  type Method,
  momentumOptions,
  soloLarsRecipe,
  type StepInputs,
} from "./method.ts";

/** DINO's options. */
export interface DinoOptions {
  /** K, the outputs of the head's last layer. */
  readonly outputDim: number;
  readonly hiddenDim: number;
  readonly bottleneckDim: number;
  readonly studentTemperature: number;
  /** The teacher's temperature after its warm-up, and at its start. */
  readonly teacherTemperature: number;
  readonly warmupTeacherTemperature: number;
  /** Epochs of the teacher temperature's linear warm-up; 0: fixed from the start. */
  readonly warmupTeacherEpochs: number;
  readonly centerMomentum: number;
  /** The teacher's moving-average rate at the start; `finalMomentum` at the end (cosine). */
  readonly momentum: number;
  readonly finalMomentum: number;
  /** Largest norm of each parameter's gradient; 0: no clipping. */
  readonly clipGrad: number;
  /** Epochs during which the last layer is not updated. */
  readonly freezeLastLayerEpochs: number;
  /**
   * The last layer's magnitude fixed at 1 (main_dino.py's `norm_last_layer`, its default);
   * false trains it, which its authors find better but less stable.
   */
  readonly normLastLayer: boolean;
  readonly localCrops: number;
  /** Side of the local crops (default: half the image's). */
  readonly localSize?: number;
}

/** A backbone and DINO's head: the student, and the teacher's architecture. */
class DinoNetwork {
  readonly backbone: Backbone;
  readonly head: DinoHead;

  constructor(backbone: BackboneConfig, options: DinoOptions) {
    this.backbone = createBackbone(backbone);
    this.head = new DinoHead(
      this.backbone.featureDim,
      options.hiddenDim,
      options.bottleneckDim,
      options.outputDim,
      { trainableMagnitude: !options.normLastLayer },
    );
  }

  entries(): Entry[] {
    return [...prefixed("backbone", this.backbone), ...prefixed("head", this.head)];
  }
}

/**
 * DINO's teacher temperature in an epoch (main_dino.py's `teacher_temp_schedule`): a linear
 * warm-up from `warmupTeacherTemperature` reaching `teacherTemperature` at the last warm-up
 * epoch (np.linspace), then constant.
 */
export function dinoTeacherTemperature(epoch: number, options: DinoOptions): number {
  const { warmupTeacherEpochs: w, warmupTeacherTemperature: start, teacherTemperature: end } =
    options;
  if (epoch >= w) return end;
  return w === 1 ? start : start + (end - start) * epoch / (w - 1);
}

/**
 * DINO (Caron et al. 2021; facebookresearch/dino main_dino.py): a student (backbone and
 * {@link DinoHead}) predicts, for every crop, the teacher's output on each global crop of
 * the same image (pairs of a crop with itself skipped): cross-entropy between the teacher's
 * centred, sharpened softmax (temperature warmed up over the first epochs) and the student's
 * softmax at `studentTemperature`. The teacher, a moving average of the student (τ from
 * `momentum` to `finalMomentum` along a cosine), sees only the two global crops, in one
 * pass. The centre follows the teacher's raw outputs with momentum `centerMomentum`, after
 * the loss has used it. Each parameter's gradient is clipped to `clipGrad` after the
 * backward pass, and the last layer is not updated during the first
 * `freezeLastLayerEpochs` epochs (see `frozen`). The student's global and local crops go
 * through the backbone in a pass per crop size, the head over all of them at once.
 */
export const dino: Method<DinoOptions> = {
  name: "dino",
  title: "DINO",
  encoder: "the student's backbone",
  // main_dino.py's defaults where they fit CIFAR (its README: momentum 0.996, clipping 3.0,
  // last layer frozen for an epoch, 8 local crops), the head of solo-learn's cifar/dino.yaml
  // (K = 4096) and its teacher temperatures (0.04 → 0.07, no warm-up by default).
  defaults: {
    outputDim: 4096,
    hiddenDim: 2048,
    bottleneckDim: 256,
    studentTemperature: 0.1,
    teacherTemperature: 0.07,
    warmupTeacherTemperature: 0.04,
    warmupTeacherEpochs: 0,
    centerMomentum: 0.9,
    momentum: 0.996,
    finalMomentum: 1,
    clipGrad: 3,
    freezeLastLayerEpochs: 1,
    normLastLayer: true,
    localCrops: 8,
  },
  options: [
    {
      key: "outputDim",
      flag: "--output-dim",
      kind: "positiveInteger",
      description: "outputs K of the head's last layer",
    },
    {
      key: "hiddenDim",
      flag: "--hidden-dim",
      kind: "positiveInteger",
      description: "hidden size of the head's MLP",
    },
    {
      key: "bottleneckDim",
      flag: "--bottleneck-dim",
      kind: "positiveInteger",
      description: "size of the head's normalised bottleneck",
    },
    {
      key: "studentTemperature",
      flag: "--student-temperature",
      kind: "positiveNumber",
      description: "temperature of the student's softmax",
    },
    {
      key: "teacherTemperature",
      flag: "--teacher-temperature",
      kind: "positiveNumber",
      description: "temperature of the teacher's softmax after the warm-up",
    },
    {
      key: "warmupTeacherTemperature",
      flag: "--warmup-teacher-temperature",
      kind: "positiveNumber",
      description: "teacher temperature at the start of the warm-up",
    },
    {
      key: "warmupTeacherEpochs",
      flag: "--warmup-teacher-epochs",
      kind: "nonNegativeInteger",
      description: "epochs of the teacher temperature's warm-up (0: fixed)",
    },
    {
      key: "centerMomentum",
      flag: "--center-momentum",
      kind: "fraction",
      description: "moving-average rate of the centre of the teacher's outputs",
    },
    ...momentumOptions,
    {
      key: "clipGrad",
      flag: "--clip-grad",
      kind: "nonNegativeNumber",
      description: "largest gradient norm of each parameter (0: no clipping)",
    },
    {
      key: "freezeLastLayerEpochs",
      flag: "--freeze-last-layer",
      kind: "nonNegativeInteger",
      description: "epochs during which the head's last layer is not updated",
    },
    {
      key: "normLastLayer",
      flag: "--norm-last-layer",
      kind: "boolean",
      description: "the head's last layer at unit norm, its magnitude not trained",
    },
    ...localCropOptions,
  ],
  recipes: {
    // solo-learn scripts/pretrain/cifar/dino.yaml: its head and teacher momentum, LARS
    // (eta 0.02 there; selfsup's LARS keeps SimCLR's 0.001), two crops (asymmetric
    // augmentations), no gradient clipping (solo-learn's default clip_grad 0).
    cifar: {
      augmentation: "solo-asymmetric",
      outputDim: 4096,
      hiddenDim: 2048,
      bottleneckDim: 256,
      momentum: 0.9995,
      finalMomentum: 1,
      clipGrad: 0,
      localCrops: 0,
      ...soloLarsRecipe,
      learningRate: 0.3,
      weightDecay: 1e-6,
    },
    // A narrow network on the synthetic set: a head sized to its 128 features, a much
    // sharper teacher (0.01 throughout), six local crops and Adam 5e-4 — the best of a
    // sweep of 5-epoch runs there. From a random network nearly every image gets the same
    // bottleneck direction, so once centred the teacher is close to uniform and its loss
    // stays at ln K; at 0.04 (0.07, 0.02, a student at 0.05) it stayed there, at 0.01 the
    // loss falls, and the local crops give it more to distil each step (README, results).
    synthetic: {
      hiddenDim: 512,
      bottleneckDim: 128,
      outputDim: 1024,
      teacherTemperature: 0.01,
      localCrops: 6,
      learningRate: 5e-4,
    },
  },
  validate(options) {
    const checked = checkOptions(this, options);
    checkMomentumSchedule(checked);
    return checked;
  },
  views(options, base) {
    return multiCropGroups({
      height: base.height,
      width: base.width,
      localCount: options.localCrops,
      localHeight: options.localSize,
      localWidth: options.localSize,
      mean: base.mean,
      std: base.std,
    });
  },
  build({ gpu, backbone, totalSteps, stepsPerEpoch, seed }, options) {
    assertLocalCropsFit(backbone, options.localCrops, "DINO");
    const student = new DinoNetwork(backbone, options);
    const teacher = new DinoNetwork(backbone, options);
    const trainable = new ParameterBlock(gpu, student.entries());
    const teacherBlock = new ParameterBlock(gpu, teacher.entries());
    initializeBlock(trainable, seed);
    initializeBlock(teacherBlock, seed);
    const ema = new EmaUpdate(gpu, teacherBlock, trainable);
    ema.copy();
    const center = gpu.tensor([options.outputDim], "DINO centre");
    gpu.write(center, new Float32Array(options.outputDim));
    const temperature = new StepValues(gpu, ["invTemperature"], "DINO teacher temperature");
    const clip = options.clipGrad > 0
      ? new GradientClip(gpu, trainable, options.clipGrad)
      : undefined;
    const training = { train: true, inputGrad: false };
    // Frozen during the first epochs: every parameter of the last layer (main_dino.py's
    // cancel_gradients_last_layer), its magnitude with its direction.
    const lastLayer = prefixed("head.last_layer", student.head.lastLayer).map(([name]) => name);

    return {
      backbone: student.backbone,
      trainable,
      state: new Map<string, ParameterBlock | Tensor>([
        ["teacher", teacherBlock],
        ["center", center],
      ]),
      collapseLoss: Math.log(options.outputDim),
      // A quarter of the run's temperature: 0.04 → 0.01 is what took a narrow network's loss
      // below ln K (the synthetic recipe's comment).
      collapseHint: `Try a sharper teacher (--teacher-temperature ${
        Number((options.teacherTemperature / 4).toPrecision(3))
      }), more local crops or a lower --lr`,
      record(program: Program, { views }: StepInputs) {
        const crops = multicropPasses(program, student.backbone, views);
        const teacherFeatures = teacher.backbone.forward(program, crops.globals, training);
        const teacherOutput = teacher.head.forward(program, teacherFeatures.output, training);
        const head = student.head.forward(program, crops.features, {
          ...training,
          inputGrad: true,
        });
        const targets = dinoTeacherTargets(program, teacherOutput.output, center, temperature);
        const { loss, gradInput } = multicropCrossEntropy(program, head.output, targets, {
          crops: crops.crops,
          targetCrops: 2,
          temperature: options.studentTemperature,
        });
        updateDinoCenter(program, teacherOutput.output, center, options.centerMomentum);
        crops.backward(program, head.backward(program, gradInput)!);
        // The student's outputs for the global crops.
        const embeddings = sliceRows(program, head.output, 0, 2 * crops.images);
        program.keep(loss, embeddings);
        return { loss, embeddings };
      },
      // The clipping's norms are the gradients' own: after an f16 backbone's loss scale is
      // divided out (PyTorch's scaler.unscale_ before clip_gradients).
      recordBeforeUpdate(program) {
        clip?.record(program);
      },
      recordAfterUpdate(program) {
        ema.record(program);
      },
      prepare(step) {
        const epoch = Math.floor(step / stepsPerEpoch);
        temperature.write({ invTemperature: 1 / dinoTeacherTemperature(epoch, options) });
        ema.prepare(emaRate(step, totalSteps, options.momentum, options.finalMomentum));
      },
      frozen(step) {
        return step < options.freezeLastLayerEpochs * stepsPerEpoch ? lastLayer : [];
      },
      destroy() {
        gpu.release(center.buffer);
        temperature.destroy();
        clip?.destroy();
        ema.destroy();
        trainable.destroy();
        teacherBlock.destroy();
      },
    };
  },
};
