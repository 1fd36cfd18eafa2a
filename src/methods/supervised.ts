import type { Tensor } from "../gpu/tensor.ts";
import { crossEntropy } from "../loss/cross_entropy.ts";
import { createBackbone } from "../nn/backbone.ts";
import { Linear } from "../nn/linear.ts";
import { prefixed } from "../nn/module.ts";
import { ParameterBlock } from "../nn/parameters.ts";
import { checkOptions, initializeBlock, type Method, type MethodRun } from "./method.ts";

/** The supervised classifier's options. */
export interface SupervisedOptions {
  readonly numClasses: number;
}

/** A supervised run: its classifier, for measuring accuracy after training. */
export interface ClassifierRun extends MethodRun {
  readonly head: Linear;
}

/**
 * Supervised training of a backbone with a linear classifier on the labels (softmax
 * cross-entropy): fine-tuning when the backbone starts from a pre-trained checkpoint, the
 * supervised baseline when it starts at random. Not a self-supervised method, so not
 * offered by `--method`; `deno task finetune` uses it. The classifier is named as its
 * library names it (torchvision: `fc`), so the checkpoint loads into
 * `torchvision.models.resnet18(num_classes=K)` whole.
 */
export const supervised: Method<SupervisedOptions> & {
  build: (...args: Parameters<Method<SupervisedOptions>["build"]>) => ClassifierRun;
} = {
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
  build({ gpu, backbone: config, seed }, { numClasses }) {
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
  },
};
