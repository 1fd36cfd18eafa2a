import { Program } from "../src/gpu/gpu.ts";
import type { Gpu } from "../src/gpu/gpu.ts";
import { Parameter, type ParameterKind } from "../src/nn/module.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { createOptimizer, type Optimizer, type OptimizerConfig } from "../src/optim/optimizer.ts";
import { vitLayerDecay } from "../src/optim/layer_decay.ts";
import { VisionTransformer, vitSmallDefault } from "../src/nn/vit.ts";
import { SelfsupError } from "../src/errors.ts";
import { assertEquals, assertThrows } from "./_assert.ts";
import { assertClose, loadFixture, randn, testGpu } from "./_util.ts";

const zeros = (size: number) => new Float32Array(size);

/** A block of one parameter per entry, with gradients and the optimizer's state set. */
function makeBlock(gpu: Gpu, shapes: readonly (readonly [string, number[], ParameterKind])[]) {
  return new ParameterBlock(
    gpu,
    shapes.map(([name, shape, kind]) => [name, new Parameter(shape, kind, zeros)] as const),
  );
}

/** Per-parameter arrays laid out in the block's flat layout, with `padding` in the gaps. */
function flatten(
  block: ParameterBlock,
  parts: readonly ArrayLike<number>[],
  padding = 0,
): Float32Array<ArrayBuffer> {
  const flat = new Float32Array(block.values.size).fill(padding);
  block.segments.forEach(({ offset }, i) => flat.set(parts[i], offset));
  return flat;
}

/** Splits a flat array into per-parameter arrays, asserting the padding is exactly zero. */
function split(block: ParameterBlock, flat: Float32Array, label: string): Float32Array[] {
  const live = new Uint8Array(flat.length);
  const parts = block.segments.map(({ offset, size }) => {
    live.fill(1, offset, offset + size);
    return flat.slice(offset, offset + size);
  });
  const padding = flat.filter((_, i) => !live[i]);
  assertClose(padding, new Float32Array(padding.length), {
    atol: 0,
    rtol: 0,
    label: `${label} padding`,
  });
  return parts;
}

/** A state's part of each parameter: its range of a flat state, or its value (Adam's step). */
function stateParts(block: ParameterBlock, name: string, flat: Float32Array): Float32Array[] {
  if (name === "step") return block.segments.map((_, s) => flat.slice(s, s + 1));
  return split(block, flat, name);
}

/** Runs the optimizer's recorded update once per gradient, each with its learning rate. */
async function runSteps(
  gpu: Gpu,
  optimizer: Optimizer,
  block: ParameterBlock,
  grads: readonly Float32Array<ArrayBuffer>[],
  rates: readonly number[],
  firstStep = 1,
) {
  const program = new Program(gpu, "optimizer test");
  optimizer.record(program);
  for (let k = 0; k < grads.length; k++) {
    gpu.write(block.grads, grads[k]);
    optimizer.prepare(firstStep + k, rates[k]);
    gpu.submit(program);
  }
  const names = [...optimizer.state.keys()];
  const [values, ...state] = await gpu.read(
    block.values,
    ...names.map((n) => optimizer.state.get(n)!),
  ) as Float32Array[];
  program.destroy();
  return { values, state: new Map(names.map((n, i) => [n, state[i]])) };
}

// ---- one step against PyTorch ----

for (const name of ["adam", "adamw"]) {
  Deno.test(`${name} step matches the PyTorch fixture`, async () => {
    const gpu = await testGpu();
    const fixture = await loadFixture(name);
    const meta = fixture.meta as {
      step: number;
      lr: number;
      betas: [number, number];
      eps: number;
      weight_decay: number;
    };
    const block = makeBlock(gpu, [["p", fixture.shape("param"), "weight"]]);
    block.load(new Map([["p", fixture.get("param")]]), name);
    const optimizer = createOptimizer(gpu, block, {
      name: name as "adam" | "adamw",
      betas: meta.betas,
      eps: meta.eps,
      weightDecay: meta.weight_decay,
    });
    gpu.write(optimizer.state.get("exp_avg")!, flatten(block, [fixture.get("exp_avg")]));
    gpu.write(optimizer.state.get("exp_avg_sq")!, flatten(block, [fixture.get("exp_avg_sq")]));
    // The state of the fixture's step − 1 updates, its count included.
    gpu.write(optimizer.state.get("step")!, Float32Array.of(meta.step - 1));
    const grad = flatten(block, [fixture.get("grad")]);
    const { values, state } = await runSteps(gpu, optimizer, block, [grad], [meta.lr], meta.step);
    // f32 arithmetic on values of order 1: a few ulps.
    const tolerance = { atol: 1e-7, rtol: 1e-6 };
    assertClose(split(block, values, "param")[0], fixture.get("param_after"), tolerance);
    assertClose(
      split(block, state.get("exp_avg")!, "exp_avg")[0],
      fixture.get("exp_avg_after"),
      tolerance,
    );
    assertClose(
      split(block, state.get("exp_avg_sq")!, "exp_avg_sq")[0],
      fixture.get("exp_avg_sq_after"),
      tolerance,
    );
    optimizer.destroy();
    block.destroy();
  });
}

Deno.test("sgd momentum step matches the PyTorch fixture", async () => {
  const gpu = await testGpu();
  const fixture = await loadFixture("sgd_momentum");
  const meta = fixture.meta as {
    lr: number;
    momentum: number;
    weight_decay: number;
    dampening: number;
    nesterov: boolean;
  };
  if (meta.dampening !== 0 || meta.nesterov) throw new Error("sgd_momentum: unsupported variant");
  const block = makeBlock(gpu, [["p", fixture.shape("param"), "weight"]]);
  block.load(new Map([["p", fixture.get("param")]]), "sgd_momentum");
  const optimizer = createOptimizer(gpu, block, {
    name: "sgd",
    momentum: meta.momentum,
    weightDecay: meta.weight_decay,
  });
  const buffer = flatten(block, [fixture.get("momentum_buffer")]);
  gpu.write(optimizer.state.get("momentum_buffer")!, buffer);
  const grad = flatten(block, [fixture.get("grad")]);
  const { values, state } = await runSteps(gpu, optimizer, block, [grad], [meta.lr], 2);
  const tolerance = { atol: 1e-7, rtol: 1e-6 };
  assertClose(split(block, values, "param")[0], fixture.get("param_after"), tolerance);
  assertClose(
    split(block, state.get("momentum_buffer")!, "buffer")[0],
    fixture.get("momentum_buffer_after"),
    tolerance,
  );
  optimizer.destroy();
  block.destroy();
});

// ---- several steps against float64 references over a block of many segments ----

/**
 * Weights, biases and batch-norm parameters of odd sizes, one exactly 64 long (no padding),
 * one of a single element, one large enough to span several LARS pieces, and a weight that
 * starts at zero (LARS falls back to a trust ratio of 1).
 */
const shapes: [string, number[], ParameterKind][] = [
  ["conv.weight", [5, 3, 3, 3], "weight"],
  ["bn.weight", [5], "norm"],
  ["bn.bias", [5], "norm"],
  ["fc.weight", [7, 9], "weight"],
  ["fc.bias", [7], "bias"],
  ["big.weight", [3, 50, 61], "weight"],
  ["one.bias", [1], "bias"],
  ["exact.weight", [64], "weight"],
  ["zero.weight", [10], "weight"],
];
const sizes = shapes.map(([, shape]) => shape.reduce((a, b) => a * b, 1));
/** Whether segment s is decayed (and adapted by LARS) when biases and norms are excluded or not. */
const decayedWhen = (exclude: boolean) => (s: number) => !exclude || shapes[s][2] === "weight";

/**
 * One update of every segment in float64: (parameters, gradients, state) → updated in place,
 * segment s at learning rate lrs[s].
 */
type Reference = (
  params: Float64Array[],
  grads: Float64Array[],
  state: Map<string, Float64Array[]>,
  step: number,
  lrs: readonly number[],
) => void;

function adamReference(
  [beta1, beta2]: [number, number],
  eps: number,
  decay: number,
  decoupled: boolean,
  decayed = decayedWhen(false),
): Reference {
  return (params, grads, state, _step, lrs) => {
    const m = state.get("exp_avg")!;
    const v = state.get("exp_avg_sq")!;
    params.forEach((p, s) => {
      // PyTorch's state['step']: the parameter's own updates, this one included.
      const step = ++state.get("step")![s][0];
      const lr = lrs[s];
      const weightDecay = decayed(s) ? decay : 0;
      for (let i = 0; i < p.length; i++) {
        if (decoupled) p[i] *= 1 - lr * weightDecay;
        const g = grads[s][i] + (decoupled ? 0 : weightDecay * p[i]);
        m[s][i] = beta1 * m[s][i] + (1 - beta1) * g;
        v[s][i] = beta2 * v[s][i] + (1 - beta2) * g * g;
        const mHat = m[s][i] / (1 - beta1 ** step);
        const vHat = v[s][i] / (1 - beta2 ** step);
        p[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
      }
    });
  };
}

function sgdReference(momentum: number, decay: number, decayed = decayedWhen(false)): Reference {
  return (params, grads, state, _step, lrs) => {
    const buffers = state.get("momentum_buffer");
    params.forEach((p, s) => {
      const lr = lrs[s];
      const weightDecay = decayed(s) ? decay : 0;
      for (let i = 0; i < p.length; i++) {
        const d = grads[s][i] + weightDecay * p[i];
        if (!buffers) {
          p[i] -= lr * d;
          continue;
        }
        buffers[s][i] = momentum * buffers[s][i] + d;
        p[i] -= lr * buffers[s][i];
      }
    });
  };
}

/** SimCLR's lars_optimizer.py, classic momentum, biases and batch norm excluded by default. */
function larsReference(
  momentum: number,
  weightDecay: number,
  eta: number,
  decayed = decayedWhen(true),
): Reference {
  return (params, grads, state, _step, lrs) => {
    const v = state.get("momentum")!;
    params.forEach((p, s) => {
      const lr = lrs[s];
      const weight = decayed(s);
      const g = grads[s].map((gi, i) => gi + (weight ? weightDecay * p[i] : 0));
      let trust = 1;
      if (weight) {
        const pNorm = Math.hypot(...p);
        const gNorm = Math.hypot(...g);
        if (pNorm > 0 && gNorm > 0) trust = (eta * pNorm) / gNorm;
      }
      for (let i = 0; i < p.length; i++) {
        v[s][i] = momentum * v[s][i] + lr * trust * g[i];
        p[i] -= v[s][i];
      }
    });
  };
}

/** Learning-rate scales of some of the segments, as layer-wise decay gives them. */
const scales: Readonly<Record<string, number>> = {
  "conv.weight": 0.25,
  "bn.bias": 0.5,
  "fc.weight": 0.65 ** 3,
  "big.weight": 0.1,
  "one.bias": 0,
};
function lrScale(name: string): number {
  return scales[name] ?? 1;
}

const cases: { config: OptimizerConfig; reference: Reference; rates: number[] }[] = [
  {
    config: { name: "adam", weightDecay: 0.01 },
    reference: adamReference([0.9, 0.999], 1e-8, 0.01, false),
    rates: [1e-3, 2e-3, 5e-4, 1e-3],
  },
  {
    config: { name: "adamw", betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 },
    reference: adamReference([0.8, 0.99], 1e-6, 0.1, true),
    rates: [1e-2, 2e-2, 5e-3, 1e-2],
  },
  {
    config: { name: "sgd", momentum: 0.9, weightDecay: 5e-4 },
    reference: sgdReference(0.9, 5e-4),
    rates: [0.1, 0.05, 0.2, 0.1],
  },
  {
    config: { name: "sgd", weightDecay: 1e-3 },
    reference: sgdReference(0, 1e-3),
    rates: [0.1, 0.05, 0.2, 0.1],
  },
  {
    config: { name: "lars", momentum: 0.9, weightDecay: 1e-2, trustCoefficient: 1e-3 },
    reference: larsReference(0.9, 1e-2, 1e-3),
    rates: [4.8, 2.4, 1.2, 4.8],
  },
  // A learning rate per parameter (layer-wise decay), one of them frozen at scale 0.
  {
    config: { name: "adamw", weightDecay: 0.1, excludeBiasAndNorm: true, lrScale },
    reference: adamReference([0.9, 0.999], 1e-8, 0.1, true, decayedWhen(true)),
    rates: [1e-2, 2e-2, 5e-3, 1e-2],
  },
  {
    config: { name: "adam", weightDecay: 0.01, lrScale },
    reference: adamReference([0.9, 0.999], 1e-8, 0.01, false),
    rates: [1e-3, 2e-3, 5e-4, 1e-3],
  },
  {
    config: { name: "sgd", momentum: 0.9, weightDecay: 5e-4, lrScale },
    reference: sgdReference(0.9, 5e-4),
    rates: [0.1, 0.05, 0.2, 0.1],
  },
  {
    config: { name: "sgd", weightDecay: 1e-3, lrScale },
    reference: sgdReference(0, 1e-3),
    rates: [0.1, 0.05, 0.2, 0.1],
  },
  {
    config: { name: "lars", weightDecay: 1e-2, lrScale },
    reference: larsReference(0.9, 1e-2, 1e-3),
    rates: [4.8, 2.4, 1.2, 4.8],
  },
  // The weight-decay mask, both ways round from each optimizer's default.
  {
    config: { name: "adamw", weightDecay: 0.1, excludeBiasAndNorm: true },
    reference: adamReference([0.9, 0.999], 1e-8, 0.1, true, decayedWhen(true)),
    rates: [1e-2, 2e-2, 5e-3, 1e-2],
  },
  {
    config: { name: "adam", weightDecay: 0.1, excludeBiasAndNorm: true },
    reference: adamReference([0.9, 0.999], 1e-8, 0.1, false, decayedWhen(true)),
    rates: [1e-3, 2e-3, 5e-4, 1e-3],
  },
  {
    config: { name: "sgd", momentum: 0.9, weightDecay: 0.05, excludeBiasAndNorm: true },
    reference: sgdReference(0.9, 0.05, decayedWhen(true)),
    rates: [0.1, 0.05, 0.2, 0.1],
  },
  {
    config: { name: "lars", weightDecay: 1e-2, excludeBiasAndNorm: false },
    reference: larsReference(0.9, 1e-2, 1e-3, decayedWhen(false)),
    rates: [4.8, 2.4, 1.2, 4.8],
  },
];

function initialParams(): Float32Array<ArrayBuffer>[] {
  return sizes.map((size, s) => shapes[s][0] === "zero.weight" ? zeros(size) : randn(size, 31 + s));
}

function stepGrads(block: ParameterBlock, steps: number): Float32Array<ArrayBuffer>[] {
  // NaN in the padding: the kernels must never read it into a parameter.
  return Array.from(
    { length: steps },
    (_, k) => flatten(block, sizes.map((size, s) => randn(size, 1000 * k + s, 0.1)), NaN),
  );
}

/** The reference's run over `grads`; `trains(k, s)` false leaves segment s out of step k. */
function referenceRun(
  { config, reference, rates }: (typeof cases)[number],
  stateNames: readonly string[],
  grads: readonly Float32Array[],
  block: ParameterBlock,
  trains = (_k: number, _s: number) => true,
) {
  const params = initialParams().map((p) => Float64Array.from(p));
  const state = new Map(
    stateNames.map((n) => [n, sizes.map((size) => new Float64Array(n === "step" ? 1 : size))]),
  );
  grads.forEach((flat, k) => {
    const g = block.segments.map(({ offset, size }) =>
      Float64Array.from(flat.subarray(offset, offset + size))
    );
    const lrs = shapes.map(([name]) => rates[k] * (config.lrScale ?? (() => 1))(name));
    // Segments left out come back as they were, state included (references index segments
    // by position, for their kinds).
    const held = [params, ...state.values()].map((parts) => parts.map((part) => part.slice()));
    reference(params, g, state, k + 1, lrs);
    [params, ...state.values()].forEach((parts, i) =>
      parts.forEach((part, s) => trains(k, s) || part.set(held[i][s]))
    );
  });
  return { params, state };
}

for (const testCase of cases) {
  const { config, rates } = testCase;
  const label = `${config.name}${
    config.momentum === undefined ? "" : ` momentum ${config.momentum}`
  }${config.lrScale ? " (learning rate per parameter)" : ""}${
    config.excludeBiasAndNorm === undefined
      ? ""
      : config.excludeBiasAndNorm
      ? " (biases and norms not decayed)"
      : " (every parameter decayed)"
  }`;

  Deno.test(`${label}: four steps match a float64 reference and keep padding zero`, async () => {
    const gpu = await testGpu();
    const block = makeBlock(gpu, shapes);
    block.load(new Map(shapes.map(([name], s) => [name, initialParams()[s]])), "test");
    const optimizer = createOptimizer(gpu, block, config);
    const grads = stepGrads(block, rates.length);
    const { values, state } = await runSteps(gpu, optimizer, block, grads, rates);
    const expected = referenceRun(testCase, [...state.keys()], grads, block);
    // Four f32 updates of values of order 1, against float64: a few ulps of each value.
    const tolerance = { atol: 1e-6, rtol: 1e-5 };
    split(block, values, "parameters").forEach((p, s) => {
      assertClose(p, expected.params[s], { ...tolerance, label: shapes[s][0] });
    });
    for (const [name, flat] of state) {
      stateParts(block, name, flat).forEach((part, s) => {
        assertClose(part, expected.state.get(name)![s], {
          ...tolerance,
          label: `${name} of ${shapes[s][0]}`,
        });
      });
    }
    optimizer.destroy();
    block.destroy();
  });

  Deno.test(`${label}: resuming from saved state continues exactly`, async () => {
    const gpu = await testGpu();
    const grads = (block: ParameterBlock) => stepGrads(block, 4);
    const start = new Map(shapes.map(([name], s) => [name, initialParams()[s]]));

    const whole = makeBlock(gpu, shapes);
    whole.load(start, "test");
    const uninterrupted = createOptimizer(gpu, whole, config);
    const expected = await runSteps(gpu, uninterrupted, whole, grads(whole), rates);
    uninterrupted.destroy();
    whole.destroy();

    const first = makeBlock(gpu, shapes);
    first.load(start, "test");
    const before = createOptimizer(gpu, first, config);
    const saved = await runSteps(gpu, before, first, grads(first).slice(0, 2), rates);
    before.destroy();
    first.destroy();

    const second = makeBlock(gpu, shapes);
    gpu.write(second.values, saved.values as Float32Array<ArrayBuffer>);
    const after = createOptimizer(gpu, second, config);
    for (const [name, tensor] of after.state) {
      gpu.write(tensor, saved.state.get(name) as Float32Array<ArrayBuffer>);
    }
    const resumed = await runSteps(gpu, after, second, grads(second).slice(2), rates.slice(2), 3);
    assertClose(resumed.values, expected.values, { atol: 0, rtol: 0, label: "parameters" });
    for (const [name, values] of expected.state) {
      assertClose(resumed.state.get(name)!, values, { atol: 0, rtol: 0, label: name });
    }
    after.destroy();
    second.destroy();
  });
  Deno.test(`${label}: frozen parameters keep values and state, the others train as unfrozen`, async () => {
    const gpu = await testGpu();
    const start = new Map(shapes.map(([name], s) => [name, initialParams()[s]]));
    const frozen = ["fc.weight", "big.weight", "bn.bias"];
    const isFrozen = (s: number) => frozen.includes(shapes[s][0]);

    const free = makeBlock(gpu, shapes);
    free.load(start, "test");
    const unfrozen = createOptimizer(gpu, free, config);
    const expected = await runSteps(gpu, unfrozen, free, stepGrads(free, 2), rates.slice(0, 2));
    unfrozen.destroy();
    free.destroy();

    const block = makeBlock(gpu, shapes);
    block.load(start, "test");
    const optimizer = createOptimizer(gpu, block, config);
    optimizer.freeze(frozen);
    const grads = stepGrads(block, 4);
    const held = await runSteps(gpu, optimizer, block, grads.slice(0, 2), rates.slice(0, 2));
    const values = split(block, held.values, "parameters");
    const wanted = split(block, expected.values, "parameters");
    values.forEach((v, s) => {
      assertClose(v, isFrozen(s) ? start.get(shapes[s][0])! : wanted[s], {
        atol: 0,
        rtol: 0,
        label: `${shapes[s][0]} (${isFrozen(s) ? "frozen" : "trained"})`,
      });
    });
    for (const [name, flat] of held.state) {
      const want = stateParts(block, name, expected.state.get(name)!);
      stateParts(block, name, flat).forEach((part, s) => {
        assertClose(part, isFrozen(s) ? new Float32Array(part.length) : want[s], {
          atol: 0,
          rtol: 0,
          label: `${name} of ${shapes[s][0]}`,
        });
      });
    }
    // Freed, they train again, as in PyTorch: Adam's bias corrections count their own two
    // updates (t = 1, 2), not the run's steps 3 and 4.
    optimizer.freeze([]);
    const thawed = await runSteps(gpu, optimizer, block, grads.slice(2), rates.slice(2), 3);
    const names = [...thawed.state.keys()];
    const reference = referenceRun(testCase, names, grads, block, (k, s) => k >= 2 || !isFrozen(s));
    const tolerance = { atol: 1e-6, rtol: 1e-5 };
    split(block, thawed.values, "parameters").forEach((v, s) => {
      assertClose(v, reference.params[s], { ...tolerance, label: `freed ${shapes[s][0]}` });
    });
    for (const name of names) {
      stateParts(block, name, thawed.state.get(name)!).forEach((part, s) => {
        assertClose(part, reference.state.get(name)![s], {
          ...tolerance,
          label: `freed ${name} of ${shapes[s][0]}`,
        });
      });
    }
    let refused = "";
    try {
      optimizer.freeze(["no.such"]);
    } catch (error) {
      refused = (error as Error).message;
    }
    if (refused !== "Cannot freeze no.such: no such parameter") {
      throw new Error(`freezing an unknown parameter gave "${refused}"`);
    }
    optimizer.destroy();
    block.destroy();
  });
}

Deno.test("adam: while its count is the run's step, the host's float64 bias corrections are used bit for bit", async () => {
  const gpu = await testGpu();
  const names = ["a.weight", "b.weight", "c.weight"];
  const block = makeBlock(gpu, names.map((name) => [name, [5], "weight"]));
  block.load(new Map(names.map((name) => [name, zeros(5)])), "test");
  const scale = new Map([["a.weight", 1], ["b.weight", 0.3], ["c.weight", 0.07]]);
  // β1 = 3/4 and β2 = 15/16 with gradient 4 at t = 1: m = 1, v = 1, √(1 − β2) = 1/4 and
  // lr / (1 − β1) = 4 lr are exact from the host, so the update is exactly −lr (f32) with any
  // rounding. The kernel's own corrections (ln β in f32, exp, a series) are not exact.
  const optimizer = createOptimizer(gpu, block, {
    name: "adam",
    betas: [0.75, 0.9375],
    eps: 0,
    lrScale: (name) => scale.get(name)!,
  });
  const lr = 0.0123;
  const { values, state } = await runSteps(
    gpu,
    optimizer,
    block,
    [flatten(block, names.map(() => new Float32Array(5).fill(4)))],
    [lr],
  );
  split(block, values, "parameters").forEach((p, s) => {
    const expected = new Float32Array(5).fill(-Math.fround(4 * lr * scale.get(names[s])!) / 4);
    assertClose(p, expected, { atol: 0, rtol: 0, label: names[s] });
  });
  assertEquals([...state.get("step")!], [1, 1, 1], "step counts");
  optimizer.destroy();
  block.destroy();
});

Deno.test("optimizers reject settings they do not take and bad steps", async () => {
  const gpu = await testGpu();
  const block = makeBlock(gpu, [["w", [3], "weight"]]);
  const bad: OptimizerConfig[] = [
    { name: "sgd", betas: [0.9, 0.99] },
    { name: "adam", momentum: 0.9 },
    { name: "adam", betas: [0.9, 1] },
    { name: "lars", weightDecay: -1 },
    { name: "nadam" as "adam" },
  ];
  for (const config of bad) {
    let threw = false;
    try {
      createOptimizer(gpu, block, config);
    } catch {
      threw = true;
    }
    if (!threw) throw new Error(`accepted ${JSON.stringify(config)}`);
  }
  const optimizer = createOptimizer(gpu, block, { name: "adam" });
  for (const [step, lr] of [[0, 1e-3], [1.5, 1e-3], [1, -1], [1, NaN]]) {
    let threw = false;
    try {
      optimizer.prepare(step, lr);
    } catch {
      threw = true;
    }
    if (!threw) throw new Error(`prepare accepted step ${step}, learning rate ${lr}`);
  }
  optimizer.destroy();
  block.destroy();
});

Deno.test("layer-wise decay gives MAE's lr_decay.py scales to a ViT's parameters", () => {
  const decay = 0.65;
  const scale = vitLayerDecay(2, decay, "backbone.");
  const model = new VisionTransformer({ ...vitSmallDefault, depth: 2 });
  const names = [
    ...model.entries().map(([name]) => `backbone.${name}`),
    "backbone.head.weight",
    "backbone.head.bias",
    "decoder_embed.weight",
  ];
  // get_layer_id_for_vit with num_layers = depth + 1 = 3: lr_scale = decay ** (3 - layer).
  const layer = (name: string) => {
    const bare = name.replace(/^backbone\./, "");
    if (!name.startsWith("backbone.")) return 3;
    if (["cls_token", "pos_embed"].includes(bare) || bare.startsWith("patch_embed")) return 0;
    return bare.startsWith("blocks.") ? Number(bare.split(".")[1]) + 1 : 3;
  };
  for (const name of names) {
    const expected = decay ** (3 - layer(name));
    if (scale(name) !== expected) throw new Error(`${name}: ${scale(name)}, expected ${expected}`);
  }
  assertEquals(
    ["backbone.cls_token", "backbone.blocks.0.attn.qkv.weight", "backbone.blocks.1.norm1.bias"]
      .map(scale),
    [decay ** 3, decay ** 2, decay],
    "scales by layer",
  );
  assertThrows(() => vitLayerDecay(2, 1.5), SelfsupError, "--layer-decay");
  assertThrows(() => vitLayerDecay(2, 0), SelfsupError, "--layer-decay");
  assertThrows(() => scale("backbone.blocks.2.norm1.weight"), Error, "depth 2");
});

Deno.test("a learning-rate scale that is negative or not finite is refused", async () => {
  const gpu = await testGpu();
  const block = makeBlock(gpu, [["w", [3], "weight"], ["b", [3], "bias"]]);
  for (const bad of [-1, NaN, Infinity]) {
    for (const name of ["adamw", "sgd", "lars"] as const) {
      assertThrows(
        () => createOptimizer(gpu, block, { name, lrScale: (n) => (n === "b" ? bad : 1) }),
        SelfsupError,
        "learning-rate scale of b",
      );
    }
  }
  block.destroy();
});
