import type { Tensor } from "../gpu/tensor.ts";
import { crossEntropy } from "../loss/cross_entropy.ts";
import { createBackbone } from "../nn/backbone.ts";
import { Linear } from "../nn/linear.ts";
import { prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import {
  type BuildContext,
  checkOptions,
  initializeBlock,
  type Method,
  type MethodRun,
} from "./method.ts";

/** The supervised classifier's options. */
export interface SupervisedOptions {
  readonly numClasses: number;
}

/** A supervised run: its classifier, for measuring accuracy after training. */
export interface ClassifierRun extends MethodRun {
  readonly head: Linear;
}

/**
 * Builds a backbone with a linear classifier trained on the labels by softmax cross-entropy.
 * The classifier is named as its library names it (torchvision: `fc`), so the checkpoint
 * loads into `torchvision.models.resnet18(num_classes=K)` whole.
 */
export function buildClassifier(
  { gpu, backbone: config, seed }: BuildContext,
  { numClasses }: SupervisedOptions,
): ClassifierRun {
  const backbone = createBackbone(config);
  const head = new Linear(backbone.featureDim, numClasses);
  const trainable = new ParameterBlock(gpu, [
    ...prefixed("backbone", backbone),
    ...prefixed(`backbone.${backbone.classifierName}`, head),
  ]);
  initializeBlock(trainable, seed);
  return {
    backbone,
    head,
    trainable,
    state: new Map<string, ParameterBlock | Tensor>(),
    record(program, { views: [images], labels }) {
      const features = backbone.forward(program, images, { train: true, inputGrad: false });
      const logits = head.forward(program, features.output, { train: true, inputGrad: true });
      const { loss, gradInput } = crossEntropy(program, logits.output, labels);
      features.backward(program, logits.backward(program, gradInput)!);
      program.keep(loss, features.output);
      return { loss, embeddings: features.output };
    },
    prepare() {},
    destroy() {
      trainable.destroy();
    },
  };
}

/**
 * Supervised training of a backbone with a linear classifier on the labels: fine-tuning
 * when the backbone starts from a pre-trained checkpoint, the supervised baseline when it
 * starts at random. Not a self-supervised method, so not offered by `--method`;
 * `deno task finetune` uses it.
 */
export const supervised: Method<SupervisedOptions> = {
  name: "supervised",
  title: "supervised classifier",
  encoder: "the classifier's backbone",
  defaults: { numClasses: 10 },
  options: [
    { key: "numClasses", flag: "--num-classes", kind: "positiveInteger", description: "classes" },
  ],
  recipes: { cifar: {} },
  validate(options) {
    return checkOptions(this, options);
  },
  views(_options, base) {
    return [{ count: 1, augment: base }];
  },
  build: buildClassifier,
};
