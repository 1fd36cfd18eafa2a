import { constantLearningRate, learningRate, scaledLearningRate } from "../src/optim/schedule.ts";
import { assertClose } from "./_util.ts";

function assertThrows(f: () => unknown, label: string): void {
  try {
    f();
  } catch {
    return;
  }
  throw new Error(`${label} did not throw`);
}

Deno.test("cosine schedule: warm-up from 0, peak at its end, floor at the last step", () => {
  const schedule = { base: 0.6, warmupSteps: 10, totalSteps: 110, final: 0.01 };
  const at = (step: number) => learningRate(step, schedule);
  assertClose([at(0), at(5), at(9), at(10)], [0, 0.3, 0.54, 0.6], { atol: 0, rtol: 1e-15 });
  // Halfway through the decay the cosine is at its midpoint.
  assertClose([at(60)], [(0.6 + 0.01) / 2], { atol: 0, rtol: 1e-15 });
  // The last step taken (109) is just above the floor, which holds from step 110 on.
  const lastStep = 0.01 + 0.59 * 0.5 * (1 + Math.cos(Math.PI * 99 / 100));
  assertClose([at(109), at(110), at(500)], [lastStep, 0.01, 0.01], { atol: 0, rtol: 1e-15 });
  // Never increases after the warm-up.
  for (let step = 10; step < 120; step++) {
    if (at(step + 1) > at(step)) throw new Error(`rate rises at step ${step}`);
  }
});

Deno.test("cosine schedule: without warm-up it starts at the base and decays to 0", () => {
  const schedule = { base: 1e-3, warmupSteps: 0, totalSteps: 4 };
  const rates = [0, 1, 2, 3, 4].map((step) => learningRate(step, schedule));
  const expected = [
    1e-3,
    1e-3 * (0.5 + Math.SQRT1_2 / 2),
    5e-4,
    1e-3 * (0.5 - Math.SQRT1_2 / 2),
    0,
  ];
  assertClose(rates, expected, { atol: 1e-18, rtol: 1e-12 });
  // All warm-up: the floor once the warm-up is over.
  const allWarmup = { base: 1, warmupSteps: 4, totalSteps: 4, final: 0.5 };
  assertClose([learningRate(2, allWarmup), learningRate(4, allWarmup)], [0.5, 0.5], {
    atol: 0,
    rtol: 0,
  });
});

Deno.test("constant schedule, with and without warm-up", () => {
  assertClose([0, 7, 10 ** 6].map((s) => constantLearningRate(s, { base: 0.1 })), [0.1, 0.1, 0.1]);
  const warm = [0, 2, 4, 9].map((s) => constantLearningRate(s, { base: 0.1, warmupSteps: 4 }));
  assertClose(warm, [0, 0.05, 0.1, 0.1], { atol: 0, rtol: 1e-15 });
});

Deno.test("SimCLR learning-rate scaling with the batch size", () => {
  assertClose([scaledLearningRate(0.3, 256), scaledLearningRate(0.3, 4096)], [0.3, 4.8], {
    atol: 0,
    rtol: 1e-15,
  });
  assertClose([scaledLearningRate(0.075, 4096, "sqrt")], [4.8], { atol: 0, rtol: 1e-15 });
});

Deno.test("schedules reject negative or fractional steps and misfit warm-ups", () => {
  const schedule = { base: 1, warmupSteps: 2, totalSteps: 10 };
  assertThrows(() => learningRate(-1, schedule), "step -1");
  assertThrows(() => learningRate(1.5, schedule), "step 1.5");
  assertThrows(() => learningRate(0, { ...schedule, warmupSteps: 11 }), "warm-up past the end");
  assertThrows(() => constantLearningRate(-1, { base: 1 }), "constant step -1");
  assertThrows(() => scaledLearningRate(0.3, 0), "batch 0");
});
