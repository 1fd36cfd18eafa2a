// The linear probe's protocol: on standardised features it sees the same inputs whatever the
// scale and offset of each feature, on raw features it sees them as given; each epoch takes
// ⌊N / batch size⌋ Adam steps.
import { type Features, linearProbe, type ProbeFeatures } from "../src/probe.ts";
import { assertEquals } from "./_assert.ts";
import { testGpu } from "./_util.ts";

const dim = 6;
const numClasses = 4;

/**
 * Rows of ±1 whose every column has mean 0 and standard deviation 1 exactly (bit c of the row
 * number), so that standardising them changes no bit; labels follow the first two columns.
 */
function balancedFeatures(rows: readonly number[]): Features {
  const features = new Float32Array(rows.length * dim);
  const labels = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    for (let c = 0; c < dim; c++) features[i * dim + c] = (r >> c) & 1 ? 1 : -1;
    labels[i] = r & 3;
  });
  return { features, labels, dim };
}

/**
 * Each column scaled by a power of two and shifted by a whole number: exact in float32 and
 * float64, so standardising undoes it exactly.
 */
function scaledAndShifted({ features, labels }: Features): Features {
  const scale = [0.25, 4, 1024, 2, 8, 0.5];
  const shift = [3, -700, 10000, 1, -5, 40];
  return { features: features.map((v, i) => scale[i % dim] * v + shift[i % dim]), labels, dim };
}

const train = balancedFeatures(Array.from({ length: 64 }, (_, r) => r));
const test = balancedFeatures(Array.from({ length: 32 }, (_, r) => (5 * r) % 64));

async function probe(features: ProbeFeatures, data: [Features, Features], batchSize = 16) {
  return await linearProbe(await testGpu(), data[0], data[1], {
    epochs: 3,
    learningRate: 1e-2,
    batchSize,
    features,
    seed: 0,
    numClasses,
  });
}

Deno.test("the standardized probe sees standardized features; the raw probe sees them as given", async () => {
  const moved: [Features, Features] = [scaledAndShifted(train), scaledAndShifted(test)];
  const raw = await probe("raw", [train, test]);
  // Standardising the moved features gives back the balanced ones bit for bit: the same probe.
  assertEquals(await probe("standardized", moved), raw, "standardized, scaled and shifted");
  const rawMoved = await probe("raw", moved);
  if (rawMoved.loss === raw.loss) {
    throw new Error(`the raw probe ignored the features' scale and offset: loss ${raw.loss}`);
  }
});

Deno.test("the probe takes epochs × ⌊N / batch size⌋ steps of its batch size", async () => {
  assertEquals((await probe("raw", [train, test], 16)).steps, 3 * 4, "batch 16 of 64");
  assertEquals((await probe("raw", [train, test], 24)).steps, 3 * 2, "batch 24 of 64");
});
