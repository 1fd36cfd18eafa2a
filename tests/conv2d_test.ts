import { Program } from "../src/gpu/gpu.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import {
  Conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dForward,
  conv2dOutputSize,
  type Conv2dVariant,
} from "../src/nn/conv2d.ts";
import { ParameterBlock } from "../src/nn/parameters.ts";
import { checkGradient, dot } from "./_gradcheck.ts";
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { assertClose, assertSameBits, loadFixture, norm, randn, testGpu } from "./_util.ts";
import type { TileSide } from "../src/gpu/kernel.ts";

const variants: Conv2dVariant[] = ["direct", "tiled"];

interface Shape {
  batch: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  k: number;
  stride: number;
  padding: number;
}

/** Float64 reference: y, and the input and weight gradients for output gradient gy. */
function reference(s: Shape, x: Float32Array, w: Float32Array, gy: Float32Array) {
  const oh = conv2dOutputSize(s.h, s.k, s.stride, s.padding);
  const ow = conv2dOutputSize(s.w, s.k, s.stride, s.padding);
  const y = new Float64Array(s.batch * s.cout * oh * ow);
  const gx = new Float64Array(x.length);
  const gw = new Float64Array(w.length);
  for (let n = 0; n < s.batch; n++) {
    for (let co = 0; co < s.cout; co++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const o = ((n * s.cout + co) * oh + oy) * ow + ox;
          for (let ci = 0; ci < s.cin; ci++) {
            for (let ky = 0; ky < s.k; ky++) {
              const iy = oy * s.stride - s.padding + ky;
              if (iy < 0 || iy >= s.h) continue;
              for (let kx = 0; kx < s.k; kx++) {
                const ix = ox * s.stride - s.padding + kx;
                if (ix < 0 || ix >= s.w) continue;
                const xi = ((n * s.cin + ci) * s.h + iy) * s.w + ix;
                const wi = ((co * s.cin + ci) * s.k + ky) * s.k + kx;
                y[o] += x[xi] * w[wi];
                gx[xi] += gy[o] * w[wi];
                gw[wi] += gy[o] * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { y, gx, gw };
}

/** Records forward, input gradient and weight gradient of one convolution. */
function record(
  program: Program,
  s: Shape,
  variant: Conv2dVariant,
  splits?: number,
  tile?: TileSide,
) {
  const oh = conv2dOutputSize(s.h, s.k, s.stride, s.padding);
  const ow = conv2dOutputSize(s.w, s.k, s.stride, s.padding);
  const x = program.tensor([s.batch, s.cin, s.h, s.w], "x");
  const w = program.tensor([s.cout, s.cin, s.k, s.k], "w");
  const gy = program.tensor([s.batch, s.cout, oh, ow], "gy");
  const gw = program.tensor([s.cout, s.cin, s.k, s.k], "gw");
  const options = { stride: s.stride, padding: s.padding, variant, splits, tile };
  const y = conv2dForward(program, x, w, options);
  const gx = conv2dBackwardInput(program, gy, w, x.shape, options);
  program.keep(y, gx);
  program.clear(gw);
  conv2dBackwardWeight(program, x, gy, gw, options);
  return { x, w, gy, gw, y, gx };
}

function write(tensor: Tensor, values: Float32Array, program: Program): void {
  program.gpu.write(tensor, Float32Array.from(values));
}

for (const variant of variants) {
  Deno.test(`conv2d ${variant} matches the PyTorch fixtures`, async () => {
    const gpu = await testGpu();
    for (let i = 0; i < 4; i++) {
      const f = await loadFixture(`conv2d_${i}`);
      const [batch, cin, h, w] = f.shape("input");
      const [cout, , k] = f.shape("weight");
      const s = {
        batch,
        cin,
        h,
        w,
        cout,
        k,
        stride: Number(f.meta.stride),
        padding: Number(f.meta.padding),
      };
      const program = new Program(gpu, `conv2d_${i}`);
      const t = record(program, s, variant);
      write(t.x, f.get("input"), program);
      write(t.w, f.get("weight"), program);
      write(t.gy, f.get("grad_output"), program);
      gpu.submit(program);
      const [y, gx, gw] = await gpu.read(t.y, t.gx, t.gw);
      // The fixtures are float64 sums of up to 147 products of N(0,1) values, outputs up to
      // ~40; float32 accumulation is off by a few ulps of that (measured ≤ 1.5e-5 on both
      // fixture seeds), ≥ 6× inside these bounds.
      const tol = { atol: 1e-4, rtol: 1e-4 };
      assertClose(y, f.get("output"), { ...tol, label: `conv2d_${i} ${variant} output` });
      assertClose(gx, f.get("grad_input"), { ...tol, label: `conv2d_${i} ${variant} grad_input` });
      assertClose(gw, f.get("grad_weight"), {
        ...tol,
        label: `conv2d_${i} ${variant} grad_weight`,
      });
      program.destroy();
    }
  });
}

// Shapes beyond one tile: channels past 16 and 64, pixel counts that are not multiples of
// the tiles, odd spatial sizes, and sums split several ways (the weight gradient's over
// pixels; in the tiled family the forward's and input gradient's over channels and taps too,
// whose splits conv2d_split_sum adds into the output, a stride phase's rows and columns). Widths that are
// multiples of 4 (input and output) take the specialised 3×3 kernels of the direct variant;
// images smaller than the kernel drop the taps that only see padding.
const large: Shape[] = [
  { batch: 3, cin: 5, h: 1, w: 2, cout: 6, k: 3, stride: 1, padding: 1 },
  { batch: 2, cin: 4, h: 2, w: 3, cout: 5, k: 3, stride: 2, padding: 1 },
  { batch: 1, cin: 7, h: 9, w: 12, cout: 21, k: 3, stride: 1, padding: 1 },
  { batch: 2, cin: 6, h: 11, w: 16, cout: 20, k: 3, stride: 2, padding: 1 },
  { batch: 3, cin: 20, h: 13, w: 11, cout: 70, k: 3, stride: 1, padding: 1 },
  { batch: 2, cin: 9, h: 17, w: 10, cout: 33, k: 3, stride: 2, padding: 1 },
  { batch: 2, cin: 66, h: 7, w: 6, cout: 18, k: 1, stride: 2, padding: 0 },
  // Maps lower than a tile (a ResNet's last stage on 16×16 crops): tiles span images.
  { batch: 5, cin: 24, h: 2, w: 2, cout: 20, k: 3, stride: 1, padding: 1 },
  { batch: 3, cin: 10, h: 3, w: 5, cout: 17, k: 3, stride: 2, padding: 1 },
  // Maps wider than a slice's 16 steps, and kernels wider than 3 (the loaders' carries).
  { batch: 1, cin: 3, h: 19, w: 21, cout: 5, k: 7, stride: 2, padding: 3 },
  { batch: 1, cin: 4, h: 5, w: 37, cout: 6, k: 5, stride: 1, padding: 2 },
];

for (const variant of variants) {
  Deno.test(`conv2d ${variant} crosses tile edges and splits its sums`, async () => {
    const gpu = await testGpu();
    for (const [i, s] of large.entries()) {
      const oh = conv2dOutputSize(s.h, s.k, s.stride, s.padding);
      const ow = conv2dOutputSize(s.w, s.k, s.stride, s.padding);
      const x = randn(s.batch * s.cin * s.h * s.w, 10 + i);
      const w = randn(s.cout * s.cin * s.k * s.k, 20 + i);
      const gy = randn(s.batch * s.cout * oh * ow, 30 + i);
      const ref = reference(s, x, w, gy);
      for (const splits of [undefined, 1, 5]) {
        const program = new Program(gpu, "conv2d large");
        const t = record(program, s, variant, splits);
        const summed = program.dispatches.filter((d) => d.name === "conv2d_split_sum").length;
        if (variant === "tiled" && splits === 5 && summed === 0) {
          throw new Error(`[${Object.values(s)}]: no tiled pass split its sum over k`);
        }
        write(t.x, x, program);
        write(t.w, w, program);
        write(t.gy, gy, program);
        gpu.submit(program);
        const [yv, gxv, gwv] = await gpu.read(t.y, t.gx, t.gw);
        // Sums of up to 630 products of N(0,1) values, up to ~95: measured errors ≤ 6.5e-5.
        const tol = { atol: 2e-4, rtol: 1e-4 };
        const label = `${variant} [${Object.values(s)}] splits ${splits ?? "auto"}`;
        assertClose(yv, ref.y, { ...tol, label: `${label} output` });
        assertClose(gxv, ref.gx, { ...tol, label: `${label} grad_input` });
        assertClose(gwv, ref.gw, { ...tol, label: `${label} grad_weight` });
        program.destroy();
      }
    }
  });
}

// The 128 × 128 tiles sum k = (channel, tap), or the pixels of the weight gradient, in the
// same order as the 64 × 64 ones, one fused multiply-add per term (slices of 8 instead of 16;
// a term past the end adds an exact zero), so in f32 the forward pass, every stride phase of
// the input gradient and the weight gradient give the same bits, whole or split into the same
// parts. Shapes: 3×3 and 1×1 kernels, strides 1 and 2, padding; more than one 128 × 128 tile
// of pixels and of channels in the forward (140 channels, 286 pixels), in the input gradient
// (130 input channels) and in the weight gradient (140 × 81, 20 × 1,170); sums shorter than a
// slice (one input channel of a 1×1 kernel; 5 output channels for the input gradient; 6
// pixels for the weight gradient); one tile.
const tileCases: Shape[] = [
  { batch: 2, cin: 9, h: 11, w: 13, cout: 140, k: 3, stride: 1, padding: 1 },
  { batch: 2, cin: 130, h: 9, w: 10, cout: 20, k: 3, stride: 2, padding: 1 },
  { batch: 3, cin: 70, h: 7, w: 6, cout: 135, k: 1, stride: 2, padding: 0 },
  { batch: 2, cin: 1, h: 6, w: 5, cout: 5, k: 1, stride: 1, padding: 0 },
  { batch: 1, cin: 3, h: 2, w: 3, cout: 130, k: 3, stride: 1, padding: 1 },
];
Deno.test("conv2d 128 × 128 tiles give the 64 × 64 tiles' bits", async () => {
  const gpu = await testGpu();
  for (const [i, s] of tileCases.entries()) {
    const oh = conv2dOutputSize(s.h, s.k, s.stride, s.padding);
    const ow = conv2dOutputSize(s.w, s.k, s.stride, s.padding);
    const x = randn(s.batch * s.cin * s.h * s.w, 40 + i);
    const w = randn(s.cout * s.cin * s.k * s.k, 50 + i);
    const gy = randn(s.batch * s.cout * oh * ow, 60 + i);
    for (const splits of [1, 5]) {
      const results: Float32Array[][] = [];
      for (const tile of [64, 128] as const) {
        const program = new Program(gpu, `conv2d ${tile} × ${tile} tiles`);
        const t = record(program, s, "tiled", splits, tile);
        const suffix = tile === 64 ? "tiled" : "tiled128";
        const names = new Set(program.dispatches.map((d) => d.name));
        for (const pass of ["forward", "backward_input", "backward_weight"]) {
          if (!names.has(`conv2d_${pass}_${suffix}`)) {
            throw new Error(
              `[${Object.values(s)}] tile ${tile}: conv2d_${pass}_${suffix} not recorded`,
            );
          }
        }
        write(t.x, x, program);
        write(t.w, w, program);
        write(t.gy, gy, program);
        gpu.submit(program);
        results.push((await gpu.read(t.y, t.gx, t.gw)) as Float32Array[]);
        program.destroy();
      }
      const label = `[${Object.values(s)}] splits ${splits}`;
      assertSameBits(results[1][0], results[0][0], `${label} output`);
      assertSameBits(results[1][1], results[0][1], `${label} input gradient`);
      assertSameBits(results[1][2], results[0][2], `${label} weight gradient`);
    }
  }
});

// The tiled family takes 128 × 128 tiles where they alone are 256 or more and the pass's output
// is at least 128 lines each way (see gemmTile): a 1×1 convolution of 2,048 channels over
// 2,048 pixels has 16 × 16 in each pass; over 1,920 pixels (15 × 16) its forward and input
// gradient keep 64 × 64, its weight gradient (2,048 × 2,048, whatever the pixels) does not;
// one with 64 output channels over 32,768 pixels (256 pixel tiles) keeps 64 × 64, and so do
// its input gradient (8 channels) and weight gradient (64 × 8). Recorded only.
type Tiles = [TileSide, TileSide, TileSide];
const tileChoices: { cin: number; cout: number; pixels: number; tiles: Tiles }[] = [
  { cin: 2048, cout: 2048, pixels: 2048, tiles: [128, 128, 128] },
  { cin: 8, cout: 64, pixels: 32768, tiles: [64, 64, 64] },
  { cin: 2048, cout: 2048, pixels: 1920, tiles: [64, 64, 128] },
];
for (const { cin, cout, pixels, tiles } of tileChoices) {
  Deno.test(`conv2d tiled ${cin} → ${cout} channels over ${pixels} pixels takes ${tiles.join(", ")} tiles (forward, input gradient, weight gradient)`, async () => {
    const gpu = await testGpu();
    const program = new Program(gpu, "conv2d tile choice");
    const x = program.tensor([1, cin, pixels / 64, 64], "x");
    const w = program.tensor([cout, cin, 1, 1], "w");
    const gy = program.tensor([1, cout, pixels / 64, 64], "gy");
    conv2dForward(program, x, w, { variant: "tiled" });
    conv2dBackwardInput(program, gy, w, x.shape, { variant: "tiled" });
    conv2dBackwardWeight(program, x, gy, program.tensor(w.shape, "gw"), { variant: "tiled" });
    const suffix = (tile: TileSide) => tile === 64 ? "tiled" : "tiled128";
    const expected = [
      `conv2d_forward_${suffix(tiles[0])}`,
      `conv2d_backward_input_${suffix(tiles[1])}`,
      `conv2d_backward_weight_${suffix(tiles[2])}`,
    ];
    const names = program.dispatches.map((d) => d.name).filter((n) => n.includes("_tiled"));
    assertEquals(names, expected, "kernels");
    program.destroy();
  });
}

Deno.test("conv2d refuses a tile for the direct family", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "conv2d direct tile");
  const x = program.tensor([1, 2, 5, 5], "x");
  const w = program.tensor([3, 2, 3, 3], "w");
  assertThrows(
    () => conv2dForward(program, x, w, { variant: "direct", tile: 128 }),
    Error,
    `"direct" has no tiles`,
  );
  program.destroy();
});

// The tiled family splits a sum over (channel, tap) by itself when its 64 × 64 tiles are too
// few to fill a GPU and the sum is deep enough: one tile and 36 slices of 16 (cin 64, 3×3)
// split into 4 parts; 1,024 tiles (256 × 256 pixels) with 18 slices do not; nor does one tile
// with 9 slices (parts of fewer than 8 slices would cost more than they save).
const autoSplit: { shape: Shape; splits: boolean }[] = [
  { shape: { batch: 1, cin: 64, h: 4, w: 4, cout: 8, k: 3, stride: 1, padding: 1 }, splits: true },
  {
    shape: { batch: 1, cin: 32, h: 256, w: 256, cout: 8, k: 3, stride: 1, padding: 1 },
    splits: false,
  },
  { shape: { batch: 2, cin: 16, h: 5, w: 5, cout: 8, k: 3, stride: 1, padding: 1 }, splits: false },
];
Deno.test("conv2d tiled splits its forward sum only when tiles are few and the sum deep", async () => {
  const gpu = await testGpu();
  for (const { shape, splits } of autoSplit) {
    const program = new Program(gpu, "conv2d automatic splits");
    const x = program.tensor([shape.batch, shape.cin, shape.h, shape.w], "x");
    const w = program.tensor([shape.cout, shape.cin, shape.k, shape.k], "w");
    program.keep(conv2dForward(program, x, w, { ...shape, variant: "tiled" }));
    const names = program.dispatches.map((d) => d.name);
    assertEquals(names.includes("conv2d_split_sum"), splits, `[${Object.values(shape)}] split`);
    program.destroy();
  }
});

// An image of more than 65,535 × 64 output pixels (2048 × 2049): the tiled kernel's pixel
// tiles fold into a second grid dimension instead of exceeding the adapter's limit.
Deno.test("conv2d tiled folds more than 65,535 pixel tiles into the grid's z", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "conv2d large image");
  const x = program.tensor([1, 1, 2048, 2049], "x");
  const w = program.tensor([2, 1, 1, 1], "w");
  const y = conv2dForward(program, x, w, { variant: "tiled" });
  program.keep(y);
  const xs = new Float32Array(x.size).map((_, i) => (i % 7) - 3);
  gpu.write(x, xs);
  gpu.write(w, new Float32Array([2, -1]));
  gpu.submit(program);
  const [ys] = await gpu.read(y);
  const expected = new Float32Array(2 * xs.length);
  expected.set(xs.map((v) => 2 * v));
  expected.set(xs.map((v) => -v), xs.length);
  assertClose(ys, expected, { atol: 0, rtol: 0, label: "1×1 convolution of a large image" });
  program.destroy();
});

// A stride phase of the input gradient that no tap reaches (stride 3 over a 3×3 map, padding
// 1: input row 2 is read by no kernel tap of the one output row) gets zero gradient.
for (const variant of variants) {
  Deno.test(`conv2d ${variant} input gradient of a phase no tap reaches is zero`, async () => {
    const gpu = await testGpu();
    const s = { batch: 1, cin: 2, h: 3, w: 3, cout: 3, k: 3, stride: 3, padding: 1 };
    const program = new Program(gpu, "conv2d unreached phase");
    const t = record(program, s, variant);
    const x = randn(18, 1), w = randn(54, 2), gy = randn(3, 3);
    write(t.x, x, program);
    write(t.w, w, program);
    write(t.gy, gy, program);
    gpu.submit(program);
    const [yv, gxv] = await gpu.read(t.y, t.gx);
    const ref = reference(s, x, w, gy);
    assertClose(yv, ref.y, { atol: 1e-5, label: `${variant} output` });
    assertClose(gxv, ref.gx, { atol: 1e-5, label: `${variant} input gradient` });
    program.destroy();
  });
}

const odd: Shape[] = [
  { batch: 1, cin: 3, h: 7, w: 9, cout: 5, k: 3, stride: 1, padding: 1 },
  { batch: 2, cin: 5, h: 5, w: 4, cout: 13, k: 3, stride: 1, padding: 1 },
  { batch: 1, cin: 6, h: 7, w: 8, cout: 3, k: 3, stride: 2, padding: 1 },
  { batch: 2, cin: 5, h: 9, w: 7, cout: 7, k: 3, stride: 2, padding: 1 },
  { batch: 1, cin: 7, h: 8, w: 11, cout: 13, k: 1, stride: 2, padding: 0 },
  { batch: 2, cin: 3, h: 13, w: 10, cout: 5, k: 7, stride: 2, padding: 3 },
];

for (const variant of variants) {
  Deno.test(`conv2d ${variant} gradients match finite differences`, async () => {
    const gpu = await testGpu();
    for (const [i, s] of odd.entries()) {
      const program = new Program(gpu, "conv2d gradcheck");
      const t = record(program, s, variant);
      const x0 = randn(t.x.size, 40 + i);
      const w0 = randn(t.w.size, 50 + i, 0.3);
      const r = randn(t.gy.size, 60 + i);
      write(t.x, x0, program);
      write(t.w, w0, program);
      write(t.gy, r, program);
      gpu.submit(program);
      const [gx, gw] = await gpu.read(t.gx, t.gw);
      const label = `conv2d ${variant} [${Object.values(s)}]`;
      // The loss Σ r·y is linear in x and in w, so central differences are exact up to
      // float32 rounding of y.
      const loss = async (into: Tensor, values: Float32Array<ArrayBuffer>) => {
        gpu.write(into, values);
        gpu.submit(program);
        return dot(r, await gpu.readF32(t.y));
      };
      await checkGradient(`${label} input`, (v) => loss(t.x, v), x0, gx);
      write(t.x, x0, program);
      await checkGradient(`${label} weight`, (v) => loss(t.w, v), w0, gw);
      program.destroy();
    }
  });
}

Deno.test("conv2d weight gradient accumulates into the gradient block", async () => {
  const gpu = await testGpu();
  for (const variant of variants) {
    for (const splits of [1, 3]) {
      const s = { batch: 2, cin: 5, h: 6, w: 7, cout: 6, k: 3, stride: 1, padding: 1 };
      const program = new Program(gpu, "conv2d accumulate");
      const x = program.tensor([s.batch, s.cin, s.h, s.w], "x");
      const gy = program.tensor([s.batch, s.cout, s.h, s.w], "gy");
      const gw = program.tensor([s.cout, s.cin, s.k, s.k], "gw");
      const options = { stride: 1, padding: 1, variant, splits };
      conv2dBackwardWeight(program, x, gy, gw, options);
      conv2dBackwardWeight(program, x, gy, gw, options);
      const x0 = randn(x.size, 70);
      const gy0 = randn(gy.size, 71);
      const start = randn(gw.size, 72);
      gpu.write(x, x0);
      gpu.write(gy, gy0);
      gpu.write(gw, start);
      gpu.submit(program);
      const once = reference(s, x0, new Float32Array(gw.size), gy0).gw;
      assertClose(await gpu.readF32(gw), start.map((v, i) => v + 2 * once[i]), {
        atol: 1e-4,
        rtol: 1e-4,
        label: `${variant} splits ${splits} accumulated gradient`,
      });
      program.destroy();
    }
  }
});

Deno.test("Conv2d layer: torchvision names and init, backward without input gradient", async () => {
  const gpu = await testGpu();
  const conv = new Conv2d(16, 32, 3, { stride: 2, padding: 1 });
  const entries = conv.entries();
  if (entries.length !== 1 || entries[0][0] !== "weight") throw new Error("expected one weight");
  const block = new ParameterBlock(gpu, entries);
  let seed = 1;
  block.initialize(() => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646);
  const weight = (await block.read()).get("weight")!;
  const mean = weight.reduce((a, b) => a + b, 0) / weight.length;
  const std = Math.sqrt(weight.reduce((a, b) => a + (b - mean) ** 2, 0) / weight.length);
  const expected = Math.sqrt(2 / (32 * 9)); // kaiming_normal_, fan_out, ReLU gain
  if (Math.abs(mean) > 0.1 * expected || Math.abs(std / expected - 1) > 0.05) {
    throw new Error(`weight mean ${mean}, std ${std}; expected 0, ${expected}`);
  }
  const program = new Program(gpu, "conv2d layer");
  const x = program.tensor([2, 16, 9, 9], "x");
  const pass = conv.forward(program, x, { train: true, inputGrad: false });
  if (pass.output.shape.join() !== "2,32,5,5") throw new Error(`output [${pass.output.shape}]`);
  const gy = program.tensor(pass.output.shape, "gy");
  if (pass.backward(program, gy) !== undefined) throw new Error("input gradient not skipped");
  const withGrad = conv.forward(program, x, { train: true, inputGrad: true });
  const gx = withGrad.backward(program, gy);
  if (gx?.shape.join() !== "2,16,9,9") throw new Error(`input gradient [${gx?.shape}]`);
  program.destroy();
  block.destroy();
});

// The finite-difference check itself: a gradient 5% off — mis-scaled, off in a random
// direction, or off in one output channel only, which the sampled coordinates may miss — must
// fail it on the largest tensor it is used on here, the 7×7 weight (735 elements).
Deno.test("finite differences catch a 5% error in the 7×7 convolution's weight gradient", async () => {
  const gpu = await testGpu();
  const s = odd.find((shape) => shape.k === 7)!;
  const program = new Program(gpu, "conv2d gradcheck of a wrong gradient");
  const t = record(program, s, "direct");
  const x0 = randn(t.x.size, 45);
  const w0 = randn(t.w.size, 55, 0.3);
  const r = randn(t.gy.size, 65);
  write(t.x, x0, program);
  write(t.w, w0, program);
  write(t.gy, r, program);
  gpu.submit(program);
  const gw = await gpu.readF32(t.gw);
  const loss = async (values: Float32Array<ArrayBuffer>) => {
    gpu.write(t.w, values);
    gpu.submit(program);
    return dot(r, await gpu.readF32(t.y));
  };
  await checkGradient("the true gradient", loss, w0, gw);
  const noise = randn(gw.length, 75);
  const noiseScale = (0.05 * norm(gw)) / norm(noise);
  const perChannel = gw.length / s.cout;
  const wrong: Record<string, Float32Array> = {
    "scaled by 1.05": gw.map((g) => 1.05 * g),
    "with noise of 5% of its norm": gw.map((g, i) => g + noiseScale * noise[i]),
  };
  for (let c = 0; c < s.cout; c++) {
    const e = noise.map((v, i) => Math.floor(i / perChannel) === c ? v : 0);
    const scale = (0.05 * norm(gw)) / norm(e);
    wrong[`off by 5% in output channel ${c}`] = gw.map((g, i) => g + scale * e[i]);
  }
  for (const [what, grad] of Object.entries(wrong)) {
    await assertRejects(
      () => checkGradient(`a gradient ${what}`, loss, w0, grad),
      Error,
      "gradient check failed",
    );
  }
  program.destroy();
});
