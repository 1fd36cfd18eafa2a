import type { AugmentConfig } from "./data/augment.ts";
import { evalBatches } from "./data/batcher.ts";
import type { ImageDataset } from "./data/dataset.ts";
import type { Dataset } from "./data/load.ts";
import { isTextDataset, type TextDataset } from "./data/text.ts";
import { documentBlocks, evalTokenBatches } from "./data/text_batcher.ts";
import { tokenizerNamed } from "./data/tokenizer.ts";
import { SelfsupError } from "./errors.ts";
import { Random } from "./data/random.ts";
import { type Gpu, Program } from "./gpu/gpu.ts";
import { crossEntropy } from "./loss/cross_entropy.ts";
import { unitRows } from "./nn/l2_normalize.ts";
import { Linear, linearForward } from "./nn/linear.ts";
import type { Backbone } from "./nn/backbone.ts";
import { ParameterBlock } from "./nn/parameters.ts";
import { createOptimizer } from "./optim/optimizer.ts";

/** Features of a dataset split: rows of `dim` floats, and their labels. */
export interface Features {
  readonly features: Float32Array;
  readonly labels: Int32Array;
  readonly dim: number;
}

/** Options of {@link extractFeatures}. */
export interface ExtractOptions {
  readonly batchSize: number;
  /** The un-augmented view of images: normalisation with the backbone's mean and std. */
  readonly transform: AugmentConfig;
  /** Called after each batch with the number of images done. */
  readonly onProgress?: (done: number) => void;
}

/**
 * Runs the backbone in eval mode (running statistics, no gradients) over a dataset in order
 * and returns its features: of un-augmented images, or of each document of a text dataset
 * ([CLS] its text [SEP], cut to the encoder's length) for a text encoder. The last partial
 * batch is padded: in eval mode every item is computed independently, so padding changes
 * nothing.
 */
export async function extractFeatures(
  gpu: Gpu,
  backbone: Backbone,
  dataset: Dataset,
  options: ExtractOptions,
): Promise<Features> {
  const config = backbone.config;
  if (isTextDataset(dataset) !== (config.name === "text")) {
    throw new SelfsupError(
      `Cannot take features of ${isTextDataset(dataset) ? "text" : "images"} with a ${
        config.name === "text" ? "text" : "image"
      } encoder`,
    );
  }
  const batchSize = Math.min(options.batchSize, dataset.length);
  const dim = backbone.featureDim;
  const program = new Program(gpu, "feature extraction");
  try {
    const input = isTextDataset(dataset)
      ? program.tensor(
        [batchSize, (config as { contextLength: number }).contextLength],
        "tokens",
        "u32",
      )
      : program.tensor([batchSize, 3, dataset.height, dataset.width], "images");
    const { output } = backbone.forward(program, input, { train: false, inputGrad: false });
    program.keep(output);
    const features = new Float32Array(dataset.length * dim);
    const labels = new Int32Array(dataset.length);
    let done = 0;
    for (const batch of inputBatches(dataset, backbone, batchSize, options.transform)) {
      gpu.write(input, batch.input);
      gpu.submit(program);
      const values = await gpu.readF32(output);
      features.set(values.subarray(0, batch.size * dim), done * dim);
      labels.set(batch.labels, done);
      done += batch.size;
      options.onProgress?.(done);
    }
    return { features, labels, dim };
  } finally {
    program.destroy();
  }
}

/** A dataset's items in order as whole batches of the backbone's input, and their labels. */
function* inputBatches(
  dataset: Dataset,
  backbone: Backbone,
  batchSize: number,
  transform: AugmentConfig,
): Generator<{ input: Float32Array | Uint32Array; labels: Int32Array; size: number }> {
  const config = backbone.config;
  if (isTextDataset(dataset) && config.name === "text") {
    const views = {
      tokenizer: config.tokenizer,
      sequenceLength: config.contextLength,
      masking: null,
      pairs: false,
    };
    const source = documentBlocks(dataset as TextDataset, tokenizerNamed(config.tokenizer));
    for (const batch of evalTokenBatches(source, views, batchSize)) {
      yield { input: batch.text.tokens, labels: batch.labels, size: batch.size };
    }
    return;
  }
  const images = dataset as ImageDataset;
  const padded = new Float32Array(batchSize * 3 * images.height * images.width);
  for (const batch of evalBatches(images, { batchSize, augment: transform })) {
    yield { input: padTo(padded, batch.images), labels: batch.labels, size: batch.size };
  }
}

/**
 * What the linear probe trains on: `standardized` features (per dimension, with the training
 * split's mean and standard deviation) or the backbone's `raw` features, as the seed did.
 */
export type ProbeFeatures = "standardized" | "raw";

/** Options of {@link linearProbe}. */
export interface LinearProbeOptions {
  readonly epochs: number;
  readonly learningRate: number;
  /** Features per Adam step; an epoch takes ⌊N / batchSize⌋ steps (the rest is dropped). */
  readonly batchSize: number;
  readonly features: ProbeFeatures;
  readonly seed: number;
  readonly numClasses: number;
}

/** What a linear probe reached. */
export interface ProbeResult {
  /** Top-1 accuracy on the test features, in [0, 1]. */
  readonly top1: number;
  /** Top-1 accuracy on the training features, in [0, 1]. */
  readonly trainTop1: number;
  /** Training loss of the last batch. */
  readonly loss: number;
  /** Adam steps taken: epochs × ⌊N / batch size⌋. */
  readonly steps: number;
}

/**
 * Trains a linear classifier on frozen features with Adam and softmax cross-entropy on the
 * GPU, and measures top-1 accuracy. With `features: "standardized"` both splits are first
 * standardised with the training split's per-dimension mean and standard deviation, which a
 * linear map could absorb but which makes one learning rate fit every backbone; with `"raw"`
 * the probe sees the features as the backbone gives them.
 */
export async function linearProbe(
  gpu: Gpu,
  train: Features,
  test: Features,
  options: LinearProbeOptions,
): Promise<ProbeResult> {
  const { dim } = train;
  let trainX = train.features, testX = test.features;
  if (options.features === "standardized") {
    const { mean, std } = columnStats(train.features, dim);
    trainX = standardize(train.features, dim, mean, std);
    testX = standardize(test.features, dim, mean, std);
  }
  const n = train.labels.length;
  const batchSize = Math.min(options.batchSize, n);
  const classifier = new Linear(dim, options.numClasses);
  const block = new ParameterBlock(gpu, classifier.entries());
  const random = new Random(options.seed, 0x9e37);
  block.initialize(() => random.float());
  const optimizer = createOptimizer(gpu, block, { name: "adam" });
  const step = new Program(gpu, "linear probe step");
  try {
    const x = step.tensor([batchSize, dim], "probe features");
    const y = step.tensor([batchSize], "probe labels", "i32");
    step.clear(block.grads);
    const pass = classifier.forward(step, x, { train: true, inputGrad: false });
    const { loss, gradInput } = crossEntropy(step, pass.output, y);
    step.keep(loss);
    pass.backward(step, gradInput);
    optimizer.record(step);

    const batchX = new Float32Array(batchSize * dim);
    const batchY = new Int32Array(batchSize);
    const stepsPerEpoch = Math.floor(n / batchSize);
    let t = 0;
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const order = new Random(options.seed, epoch + 1).permutation(n);
      for (let s = 0; s < stepsPerEpoch; s++) {
        for (let k = 0; k < batchSize; k++) {
          const i = order[s * batchSize + k];
          batchX.set(trainX.subarray(i * dim, (i + 1) * dim), k * dim);
          batchY[k] = train.labels[i];
        }
        gpu.write(x, batchX);
        gpu.write(y, batchY);
        optimizer.prepare(++t, options.learningRate);
        gpu.submit(step);
      }
    }
    // Read once at the end: each read waits for the GPU.
    const lastLoss = (await gpu.readF32(loss))[0];
    return {
      top1: await classifierAccuracy(gpu, classifier, testX, test.labels, dim, batchSize),
      trainTop1: await classifierAccuracy(gpu, classifier, trainX, train.labels, dim, batchSize),
      loss: lastLoss,
      steps: t,
    };
  } finally {
    step.destroy();
    optimizer.destroy();
    block.destroy();
  }
}

/**
 * Top-1 accuracy of a linear classifier on features [N, dim] in batches of `batchSize`
 * (evaluated on the GPU, argmax on the host).
 */
export async function classifierAccuracy(
  gpu: Gpu,
  classifier: Linear,
  x: Float32Array,
  labels: Int32Array,
  dim: number,
  batchSize: number,
): Promise<number> {
  const program = new Program(gpu, "linear probe eval");
  try {
    const input = program.tensor([batchSize, dim], "probe features");
    const { output } = classifier.forward(program, input, { train: false, inputGrad: false });
    program.keep(output);
    const k = classifier.outFeatures;
    const batch = new Float32Array(batchSize * dim);
    let correct = 0;
    for (let start = 0; start < labels.length; start += batchSize) {
      const size = Math.min(batchSize, labels.length - start);
      gpu.write(input, padTo(batch, x.subarray(start * dim, (start + size) * dim)));
      gpu.submit(program);
      const logits = await gpu.readF32(output);
      for (let r = 0; r < size; r++) {
        if (argmax(logits, r * k, k) === labels[start + r]) correct++;
      }
    }
    return correct / labels.length;
  } finally {
    program.destroy();
  }
}

/** Options of {@link knnAccuracy}. */
export interface KnnOptions {
  /** Neighbours that vote (200, as in InstDisc and solo-learn's monitor). */
  readonly k: number;
  /** Votes weigh exp(similarity / temperature) (0.1). */
  readonly temperature: number;
  readonly numClasses: number;
  /** Queries per GPU pass. */
  readonly chunk?: number;
}

/**
 * Weighted k-nearest-neighbour accuracy with cosine similarity: each test feature takes the
 * k most similar training features (of equally similar ones, the earlier), which vote for
 * their labels with weight exp(similarity / temperature); equal votes go to the lower class.
 * Similarities are computed on the GPU a chunk of queries at a time; the top k are chosen on
 * the host.
 */
export async function knnAccuracy(
  gpu: Gpu,
  train: Features,
  test: Features,
  options: KnnOptions,
): Promise<number> {
  const { dim } = train;
  const n = train.labels.length;
  const k = Math.min(options.k, n);
  const chunk = Math.min(options.chunk ?? 256, test.labels.length);
  const program = new Program(gpu, "knn similarities");
  try {
    const bank = program.tensor([n, dim], "knn bank");
    const zeros = program.tensor([n], "knn zero bias");
    const queries = program.tensor([chunk, dim], "knn queries");
    gpu.write(bank, unitRows(train.features, dim));
    gpu.write(zeros, new Float32Array(n));
    const similarities = linearForward(program, queries, bank, zeros);
    program.keep(similarities);
    const normalized = unitRows(test.features, dim);
    const batch = new Float32Array(chunk * dim);
    const votes = new Float64Array(options.numClasses);
    const heap = new TopK(k);
    let correct = 0;
    for (let start = 0; start < test.labels.length; start += chunk) {
      const size = Math.min(chunk, test.labels.length - start);
      gpu.write(queries, padTo(batch, normalized.subarray(start * dim, (start + size) * dim)));
      gpu.submit(program);
      const sims = await gpu.readF32(similarities);
      for (let r = 0; r < size; r++) {
        heap.reset();
        const row = sims.subarray(r * n, (r + 1) * n);
        for (let j = 0; j < n; j++) heap.offer(row[j], j);
        votes.fill(0);
        for (let h = 0; h < heap.size; h++) {
          votes[train.labels[heap.index[h]]] += Math.exp(heap.value[h] / options.temperature);
        }
        if (argmax(votes, 0, votes.length) === test.labels[start + r]) correct++;
      }
    }
    return correct / test.labels.length;
  } finally {
    program.destroy();
  }
}

/**
 * The k largest values seen, as a min-heap: O(log k) per value that enters. Of equal values
 * the earlier index ranks higher, as in a stable sort, so which of several equally similar
 * neighbours vote does not depend on the heap's order.
 */
class TopK {
  readonly value: Float32Array;
  readonly index: Int32Array;
  size = 0;

  constructor(readonly capacity: number) {
    this.value = new Float32Array(capacity);
    this.index = new Int32Array(capacity);
  }

  reset(): void {
    this.size = 0;
  }

  offer(v: number, i: number): void {
    if (this.size < this.capacity) {
      let c = this.size++;
      while (c > 0) {
        const parent = (c - 1) >> 1;
        if (!this.#below(v, i, parent)) break;
        this.value[c] = this.value[parent];
        this.index[c] = this.index[parent];
        c = parent;
      }
      this.value[c] = v;
      this.index[c] = i;
      return;
    }
    if (this.#below(v, i, 0)) return;
    let c = 0;
    for (;;) {
      const left = 2 * c + 1;
      if (left >= this.size) break;
      const right = left + 1;
      const child = right < this.size && this.#below(this.value[right], this.index[right], left)
        ? right
        : left;
      if (this.#below(v, i, child)) break;
      this.value[c] = this.value[child];
      this.index[c] = this.index[child];
      c = child;
    }
    this.value[c] = v;
    this.index[c] = i;
  }

  /** Whether (v, i) ranks below the entry at heap position h: smaller, or equal and later. */
  #below(v: number, i: number, h: number): boolean {
    return v < this.value[h] || (v === this.value[h] && i > this.index[h]);
  }
}

/**
 * `values` as a whole batch: itself when it fills one, else copied into `buffer` with zeros
 * after it (rows that eval mode computes independently and the caller ignores).
 */
function padTo(buffer: Float32Array, values: Float32Array): Float32Array {
  if (values.length === buffer.length) return values;
  buffer.fill(0, values.length);
  buffer.set(values);
  return buffer;
}

function argmax(values: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let j = 1; j < length; j++) if (values[offset + j] > values[offset + best]) best = j;
  return best;
}

function columnStats(x: Float32Array, dim: number): { mean: Float64Array; std: Float64Array } {
  const rows = x.length / dim;
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (let r = 0; r < rows; r++) for (let c = 0; c < dim; c++) mean[c] += x[r * dim + c];
  for (let c = 0; c < dim; c++) mean[c] /= rows;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < dim; c++) std[c] += (x[r * dim + c] - mean[c]) ** 2;
  }
  // A constant feature (a dead ReLU channel) stays zero rather than dividing by zero.
  for (let c = 0; c < dim; c++) std[c] = Math.sqrt(std[c] / rows) || 1;
  return { mean, std };
}

function standardize(
  x: Float32Array,
  dim: number,
  mean: Float64Array,
  std: Float64Array,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] - mean[i % dim]) / std[i % dim];
  return out;
}
