import { Program } from "../src/gpu/gpu.ts";
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward } from "../src/nn/conv2d.ts";
import { assertEquals, assertThrows } from "./_assert.ts";
import { adapterClasses, assertClose, familyGpu, loadFixtureFile, testGpu } from "./_util.ts";

// The fixture's cases (see make_conv2d_f16.py): the ResNet's shapes, a deep sum that the
// forward and input gradient split, a wide map whose weight gradient splits.
const cases = ["3x3", "3x3_stride2", "1x1_stride2", "stem", "deep", "wide"];

const fixture = () =>
  loadFixtureFile(new URL("./fixtures/conv2d_f16.safetensors", import.meta.url).pathname);

// The f16 kernels sum each staged slice of 16 products in f16 and the slices' sums in f32. A
// sum of `terms` products of unit normals carries about `terms` f16 roundings of partial sums
// within slices (√j in scale after j products), each off by at most 2⁻¹¹ of the partial sum:
// independent errors whose root mean square is at most about 2⁻¹¹·1.7·√terms (2⁻¹¹/√3 ·
// √(Σ_{j≤16} j) per slice). atol 2⁻⁷·√terms is ~9 times that; y and gx are then rounded to
// f16, off by up to 2⁻¹¹ of their value, which rtol 2⁻¹⁰ holds. Measured on both families:
// at most 52% of this bound on any tensor (0.025 on the 1×1 shortcut's output, 20 terms;
// 0.057, 27%, on the deep case's, 576 terms). A missing product (~1) or slice (~4) is far
// outside it (terms ≤ 576 here: atol ≤ 0.19). Whether the slices' sums are added in f32 or
// in f16 is below this resolution at these depths: the exact deep sums below pin that.
// The 128 × 128 tiles' slices are 8 deep: shorter f16 sums, within the same bounds.
// Finite differences cannot check these gradients: the smallest step of an f16 input moves
// the loss by about as much as the f16 roundings of y do, so the quotient is noise. The f32
// twins of these kernels are finite-difference checked in conv2d_test.ts; the f16 ones are the
// same generated code at another precision.
function f16Tolerance(terms: number) {
  return { atol: 2 ** -7 * Math.sqrt(terms), rtol: 2 ** -10 };
}

// The kernels the f16 passes may record: the tiled family's f16 kernels (either tile), their
// split sums in f16, and the weight gradient's reduction (f32 partial sums into the f32
// gradient).
const f16Kernels = /^conv2d_(forward|backward_input|backward_weight)_tiled(128)?_f16(_parts)?$/;
const helpers = ["conv2d_split_sum_f16", "conv2d_reduce"];

for (const [adapterClass, tile] of adapterClasses.flatMap((a) => [[a, 64], [a, 128]] as const)) {
  Deno.test(`conv2d on f16 operands (${adapterClass} adapter: tiled kernels, ${tile} × ${tile} tiles) matches the PyTorch fixture`, async () => {
    const f = await fixture();
    const gpu = await familyGpu(adapterClass);
    for (const name of cases) {
      const get = (key: string) => f.get(`${name}.${key}`);
      const [stride, padding] = f.get(`${name}.geometry`);
      const [batch, cin, h, w] = f.shape(`${name}.input`);
      const [cout, , k] = f.shape(`${name}.weight`);
      const [, , oh, ow] = f.shape(`${name}.output`);
      for (const splits of [undefined, 1]) {
        const label = `${name} splits ${splits ?? "auto"} (${adapterClass}, tile ${tile})`;
        const program = new Program(gpu, `f16 conv2d ${label}`);
        const x = program.tensor([batch, cin, h, w], "x", "f16");
        const weight = program.tensor([cout, cin, k, k], "weight", "f16");
        const gy = program.tensor([batch, cout, oh, ow], "gy", "f16");
        const gw = program.tensor([cout, cin, k, k], "weight gradient");
        const options = { stride, padding, splits, tile };
        const y = conv2dForward(program, x, weight, options);
        const gx = conv2dBackwardInput(program, gy, weight, x.shape, options);
        program.keep(y, gx);
        program.clear(gw);
        conv2dBackwardWeight(program, x, gy, gw, options);
        assertEquals([y.dtype, gx.dtype], ["f16", "f16"], `${label}: output types`);
        const names = program.dispatches.map((d) => d.name);
        for (const kernel of names) {
          if (!f16Kernels.test(kernel) && !helpers.includes(kernel)) {
            throw new Error(`${label}: recorded ${kernel}`);
          }
        }
        const tiled = tile === 64 ? "tiled" : "tiled128";
        if (!names.some((kernel) => kernel.startsWith(`conv2d_forward_${tiled}_f16`))) {
          throw new Error(`${label}: no conv2d_forward_${tiled}_f16 kernel recorded`);
        }
        if (splits === undefined) checkSplits(name, program, gw.size, label, tiled);
        gpu.write(x, Float16Array.from(get("input")));
        gpu.write(weight, Float16Array.from(get("weight")));
        gpu.write(gy, Float16Array.from(get("grad_output")));
        gpu.submit(program);
        const [yv, gxv, gwv] = await gpu.read(y, gx, gw);
        const terms = { y: cin * k * k, gx: cout * k * k, gw: batch * oh * ow };
        assertClose(yv, get("output"), { ...f16Tolerance(terms.y), label: `${label} output` });
        assertClose(gxv, get("grad_input"), {
          ...f16Tolerance(terms.gx),
          label: `${label} grad_input`,
        });
        assertClose(gwv, get("grad_weight"), {
          ...f16Tolerance(terms.gw),
          label: `${label} grad_weight`,
        });
        program.destroy();
      }
    }
  });
}

/**
 * Pins the cases' claims on automatic splits: "deep" splits the forward's and the input
 * gradient's sums over (channel, tap), "wide" the weight gradient's sum over pixels. The
 * weight gradient's splits are read off its reduction, which binds `splits` partial
 * gradients and the gradient.
 */
function checkSplits(
  name: string,
  program: Program,
  gradientSize: number,
  label: string,
  tiled: string,
) {
  const names = program.dispatches.map((d) => d.name);
  if (name === "deep") {
    for (const pass of ["forward", "backward_input"]) {
      const kernel = `conv2d_${pass}_${tiled}_f16_parts`;
      if (!names.includes(kernel)) throw new Error(`${label}: ${kernel} not recorded`);
    }
  }
  if (name === "wide") {
    const reduce = program.dispatches.find((d) => d.name === "conv2d_reduce")!;
    const splits = reduce.bytes / (4 * gradientSize) - 1;
    if (splits < 2) throw new Error(`${label}: weight gradient not split`);
  }
}

Deno.test("conv2d refuses mixed operand types, the direct family in f16 and an f16 weight gradient", async () => {
  const gpu = await testGpu();
  const program = new Program(gpu, "conv2d f16 misuse");
  const x16 = program.tensor([1, 2, 5, 5], "x", "f16");
  const w16 = program.tensor([3, 2, 3, 3], "weight", "f16");
  const w32 = program.tensor([3, 2, 3, 3], "weight");
  const gy16 = program.tensor([1, 3, 5, 5], "gy", "f16");
  const gy32 = program.tensor([1, 3, 5, 5], "gy");
  const options = { padding: 1 };
  assertThrows(() => conv2dForward(program, x16, w32, options), Error, "f16,f32");
  assertThrows(() => conv2dBackwardInput(program, gy32, w16, x16.shape, options), Error, "f32,f16");
  assertThrows(() => conv2dBackwardWeight(program, x16, gy32, w32, options), Error, "f16,f32");
  assertThrows(
    () => conv2dForward(program, x16, w16, { ...options, variant: "direct" }),
    Error,
    `"direct" has no f16 kernels`,
  );
  assertThrows(
    () => conv2dBackwardWeight(program, x16, gy16, w16, options),
    Error,
    "weight gradient must be f32",
  );
  program.destroy();
});

// The sums across staged slices are f32: 512 slices that each sum to 1 + 2⁻⁸ (one such
// product and 15 zeros; exact in f16) add up to 514 exactly, which f16 then stores exactly;
// an f16 running sum (spacing 2⁻⁷ from 8 up, 0.25 from 256) drops the 2⁻⁸ parts and ends
// near 512 (512.5 when the kernels were broken so). Each pass gets such a sum: the forward over 8,192 input channels, the
// input gradient over 8,192 output channels, the weight gradient over 8,192 pixels; whole, and
// split in 4 (128 slices a split: the forward-shaped passes' f32 partial sums). With 128 ×
// 128 tiles (the forward-shaped passes; slices of 8) every other slice holds such a product.
const slices = 512;
const deepSum = (i: number) => i % 16 === 3 ? 1 + 2 ** -8 : 0;
const exactSum = slices * (1 + 2 ** -8);
for (const [splits, tile] of [[1, 64], [4, 64], [1, 128], [4, 128]] as const) {
  Deno.test(`conv2d f16 kernels add their slices' sums in f32 (splits ${splits}, ${tile} × ${tile} tiles)`, async () => {
    const gpu = await testGpu();
    const program = new Program(gpu, "conv2d f16 deep sums");
    const terms = 16 * slices;
    const options = { splits, tile };
    const tensor = (shape: number[], label: string, values: (i: number) => number) => {
      const t = program.tensor(shape, label, "f16");
      return { t, values: Float16Array.from({ length: t.size }, (_, i) => values(i)) };
    };
    const ones = () => 1;
    // y[0] = Σ_ci x[ci]·w[0, ci]: 1×1 convolution of a 1×1 image of `terms` channels.
    const fx = tensor([1, terms, 1, 1], "forward x", ones);
    const fw = tensor([1, terms, 1, 1], "forward w", deepSum);
    // gx[0] = Σ_co gy[co]·w[co, 0]: from `terms` output channels.
    const bw = tensor([terms, 1, 1, 1], "input gradient w", deepSum);
    const bgy = tensor([1, terms, 1, 1], "input gradient gy", ones);
    // gw[0] = Σ_q gy[q]·x[q]: over `terms` pixels of one channel.
    const wx = tensor([1, 1, 128, terms / 128], "weight gradient x", deepSum);
    const wgy = tensor([1, 1, 128, terms / 128], "weight gradient gy", ones);
    const gw = program.tensor([1, 1, 1, 1], "weight gradient");
    const y = conv2dForward(program, fx.t, fw.t, options);
    const gx = conv2dBackwardInput(program, bgy.t, bw.t, [1, 1, 1, 1], options);
    program.keep(y, gx);
    program.clear(gw);
    conv2dBackwardWeight(program, wx.t, wgy.t, gw, options);
    for (const { t, values } of [fx, fw, bw, bgy, wx, wgy]) gpu.write(t, values);
    gpu.submit(program);
    const [yv, gxv, gwv] = await gpu.read(y, gx, gw);
    assertEquals([yv[0], gxv[0], gwv[0]], [exactSum, exactSum, exactSum], "deep sums");
    program.destroy();
  });
}
