/**
 * `deno task bench`: speed of the engine and the data pipeline on this machine's adapter —
 * GFLOP/s of each convolution pass at ResNet-18 shapes, images/s of a whole training step of
 * a method, and augmentation views/s on one core and on all; `--only vit` times the small
 * default ViT's training step and its attention, LayerNorm and linear kernels instead, and
 * `--only gemm` the matrix kernels on one N×N by N×N product.
 *
 * @module
 */
import { benchConv, type ConvBenchRow } from "../src/bench/conv.ts";
import { benchGemm, type GemmBenchRow } from "../src/bench/gemm.ts";
import { benchStep, type StepBenchResult } from "../src/bench/step.ts";
import { benchVit, type VitBenchResult } from "../src/bench/vit.ts";
import { positiveInteger, positiveNumber, runTask } from "../src/cli.ts";
import { benchAugment, type BenchAugmentResult } from "../src/data/bench.ts";
import { Command, InvalidArgumentError, Option } from "../src/deps.ts";
import { createGpu } from "../src/gpu/device.ts";
import { tokenizerNames } from "../src/data/tokenizer.ts";
import { textEncoderConfig } from "../src/methods/_text.ts";
import { methodNamed, methodNames } from "../src/methods/registry.ts";
import { type BackboneConfig, checkPrecision, describeBackbone } from "../src/nn/backbone.ts";
import { SelfsupError } from "../src/errors.ts";
import { vitSmallDefault } from "../src/nn/vit.ts";

// --gemm-size: the convolution form of the product lays N pixels out as 64 rows of N / 64.
function gemmSize(value: string): number {
  const n = positiveInteger(value);
  if (n % 64 !== 0) throw new InvalidArgumentError(`expected a multiple of 64, got "${value}"`);
  return n;
}

const command = new Command()
  .name("bench")
  .description("Measure kernel GFLOP/s, training-step images/s and augmentation views/s.")
  .addOption(
    new Option("--method <name>", "method whose step to time").choices(methodNames).default(
      "simclr",
    ),
  )
  .addOption(
    new Option("--stem <stem>", "ResNet stem").choices(["imagenet", "cifar"] as const).default(
      "cifar" as const,
    ),
  )
  .option("--width <n>", "channels of ResNet layer1", positiveInteger, 64)
  .addOption(
    new Option("--precision <type>", "the step's activations and gradients (ResNet, ViT)")
      .choices(["f32", "f16"] as const).default("f32" as const),
  )
  .addOption(
    new Option(
      "--backbone <name>",
      "the step's encoder: a ResNet-18, a ViT of --vit-* shape, or the default text encoder " +
        "(default: text for mlm, else resnet18)",
    ).choices(["resnet18", "vit", "text"] as const),
  )
  .addOption(
    new Option(
      "--tokenizer <name>",
      "the text encoder's vocabulary: bytes (256 + 4 special) or BERT's WordPiece (bert)",
    ).choices(tokenizerNames).default("bytes" as const),
  )
  .option("--vit-dim <n>", "ViT token width", positiveInteger, vitSmallDefault.dim)
  .option("--vit-depth <n>", "ViT blocks", positiveInteger, vitSmallDefault.depth)
  .option("--vit-heads <n>", "ViT attention heads", positiveInteger, vitSmallDefault.heads)
  .option("--patch-size <n>", "ViT patch side", positiveInteger, vitSmallDefault.patchSize)
  .option("--batch-size <n>", "images per step (each with the method's views)", positiveInteger, 32)
  .option("--seconds <x>", "time spent on each measurement", positiveNumber, 3)
  .addOption(
    new Option("--only <part>", "run one part").choices(
      ["conv", "step", "augment", "vit", "gemm"] as const,
    ),
  )
  .option("--gemm-size <n>", "N of --only gemm's N³ product (a multiple of 64)", gemmSize, 4096)
  .option("--profile", "time every kernel of the step (timestamp queries): where the time goes")
  .option("--cifar <path>", "also time loading CIFAR-10 from this folder")
  .option("--json", "print the results as JSON on stdout");

await runTask("bench", async () => {
  command.parse(Deno.args, { from: "user" });
  const flags = command.opts();
  const gpu = await createGpu();
  const backbone = flags.backbone ??
    (methodNamed(flags.method).modality === "text" ? "text" : "resnet18");
  const stepBackbone: BackboneConfig = backbone === "text"
    ? textEncoderConfig(flags.tokenizer)
    : backbone === "vit"
    ? {
      name: "vit",
      imageSize: 32,
      patchSize: flags.patchSize,
      dim: flags.vitDim,
      depth: flags.vitDepth,
      heads: flags.vitHeads,
      precision: flags.precision,
    }
    : { name: "resnet18", stem: flags.stem, width: flags.width, precision: flags.precision };
  checkPrecision(flags.precision, stepBackbone, gpu);
  if (flags.precision === "f16" && flags.only !== "step") {
    throw new SelfsupError("--precision f16 times the training step: add --only step");
  }
  // The ViT and the large GEMM are timed only on request.
  const want = (part: string) =>
    flags.only === part || (!flags.only && part !== "vit" && part !== "gemm");
  const shape = { stem: flags.stem, width: flags.width, batch: flags.batchSize };
  const say = (line: string) => !flags.json && console.log(line);
  say(`adapter: ${gpu.adapterName} (${gpu.adapterClass} kernels)`);
  say(
    backbone === "vit"
      ? `ViT ${flags.vitDim}/${flags.vitDepth}/${flags.vitHeads}, patch ${flags.patchSize}, batch ${flags.batchSize}, ${flags.precision}\n`
      : backbone === "text"
      ? `text transformer ${
        describeBackbone(textEncoderConfig(flags.tokenizer))
      }, batch ${flags.batchSize}\n`
      : `ResNet-18, ${flags.stem} stem, width ${flags.width}, batch ${flags.batchSize}, ` +
        `${flags.precision}\n`,
  );

  let conv: ConvBenchRow[] | undefined;
  // The convolutions are the ResNet's: a ViT step has none.
  if (want("conv") && backbone === "resnet18") {
    conv = await benchConv(gpu, {
      ...shape,
      batch: 2 * flags.batchSize,
      seconds: flags.seconds / 3,
    });
    say(table(
      ["convolution", "pass", "GFLOP", "ms", "GFLOP/s"],
      conv.map((
        r,
      ) => [r.name, r.pass, r.gflop.toFixed(3), r.milliseconds.toFixed(2), r.gflops.toFixed(1)]),
    ));
  }
  let step: StepBenchResult | undefined;
  if (want("step")) {
    step = await benchStep(gpu, {
      method: flags.method,
      backbone: stepBackbone,
      batch: flags.batchSize,
      seconds: flags.seconds,
      profile: flags.profile,
    });
    const items = backbone === "text" ? "sequences" : "images";
    const captioned = methodNamed(flags.method).modality === "captioned images";
    const what = backbone === "text"
      ? "one sequence an item"
      : `${step.views} views an image${captioned ? " and its caption" : ""}`;
    say(table([`${flags.method} step (${what})`, "value"], [
      ["GFLOP per step (conv, linear, attention)", step.gflopPerStep.toFixed(2)],
      ["ms per step", step.milliseconds.toFixed(1)],
      [`${items}/s`, step.imagesPerSecond.toFixed(1)],
      ["effective GFLOP/s", step.gflops.toFixed(1)],
      ["GPU memory, MiB", step.megabytes.toFixed(0)],
      ["dispatches per step", String(step.dispatches)],
    ]));
    if (step.profile) {
      say(table(
        ["kernel (profile)", "calls", "ms/step", "share", "GFLOP/s", "GB/s bound"],
        step.profile.slice(0, 20).map((k) => [
          k.name,
          String(k.calls),
          k.milliseconds.toFixed(2),
          `${(100 * k.share).toFixed(1)}%`,
          k.gflop > 0 ? k.gflops.toFixed(1) : "",
          k.gbPerSecond.toFixed(1),
        ]),
      ));
    }
  }
  let augment: BenchAugmentResult | undefined;
  if (want("augment")) {
    augment = await benchAugment({ seconds: flags.seconds, cifar: flags.cifar });
    const { multiCrop } = augment;
    say(table(["augmentation", "value"], [
      ["views/s, seed recipe 2×32×32, one core", augment.viewsPerSecondOneCore.toFixed(0)],
      [`  all ${augment.cores} cores`, augment.viewsPerSecondAllCores.toFixed(0)],
      [
        `views/s, multi-crop ${multiCrop.recipe}, one core`,
        multiCrop.viewsPerSecondOneCore.toFixed(0),
      ],
      [`  all ${augment.cores} cores`, multiCrop.viewsPerSecondAllCores.toFixed(0)],
      ...(augment.loadCifarSeconds !== undefined
        ? [["load CIFAR-10 (60,000 images), s", augment.loadCifarSeconds.toFixed(2)]]
        : []),
    ]));
  }
  let vit: VitBenchResult | undefined;
  if (want("vit")) {
    // As many images as the SimCLR step has views.
    vit = await benchVit(gpu, {
      config: vitSmallDefault,
      batch: 2 * flags.batchSize,
      seconds: flags.seconds,
      kernelSeconds: flags.seconds / 3,
    });
    const c = vit.config;
    say(`ViT ${c.dim}/${c.depth}/${c.heads}, patch ${c.patchSize}, ${vit.batch} images a step\n`);
    say(table(
      ["ViT kernel", "pass", "GFLOP", "ms", "GFLOP/s"],
      vit.kernels.map((
        r,
      ) => [r.name, r.pass, r.gflop.toFixed(3), r.milliseconds.toFixed(2), r.gflops.toFixed(1)]),
    ));
    say(table(["ViT step (forward, backward, Adam)", "value"], [
      ["GFLOP per step (linear + attention)", vit.step.gflopPerStep.toFixed(2)],
      ["ms per step", vit.step.milliseconds.toFixed(1)],
      ["images/s", vit.step.imagesPerSecond.toFixed(1)],
      ["effective GFLOP/s", vit.step.gflops.toFixed(1)],
      ["GPU memory, MiB", vit.step.megabytes.toFixed(0)],
      ["dispatches per step", String(vit.step.dispatches)],
    ]));
  }
  let gemm: GemmBenchRow[] | undefined;
  if (want("gemm")) {
    gemm = await benchGemm(gpu, { size: flags.gemmSize, seconds: flags.seconds / 3 });
    say(table(
      [`${flags.gemmSize}³ product`, "GFLOP", "ms", "GFLOP/s"],
      gemm.map((r) => [r.name, r.gflop.toFixed(1), r.milliseconds.toFixed(2), r.gflops.toFixed(1)]),
    ));
  }
  if (flags.json) {
    console.log(
      JSON.stringify(
        {
          adapter: gpu.adapterName,
          adapterClass: gpu.adapterClass,
          method: flags.method,
          precision: flags.precision,
          ...shape,
          conv,
          step,
          augment,
          vit,
          gemm,
        },
        null,
        2,
      ),
    );
  }
});

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line), ""].join(
    "\n",
  );
}
