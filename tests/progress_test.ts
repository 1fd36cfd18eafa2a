import assert from "node:assert/strict";

async function runWithPipe(code: string): Promise<{ stdout: string; stderr: string }> {
  const module = new URL("../src/progress.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", `import { progress } from ${JSON.stringify(module)};\n${code}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.ok(out.success, text(out.stderr));
  return { stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("without a terminal, progress prints plain lines and a final one", async () => {
  const { stdout, stderr } = await runWithPipe(`
    const p = progress({ label: "epoch 1", total: 4, unit: "steps", output: "stdout", intervalSeconds: 0 });
    for (let i = 1; i <= 4; i++) p.update(i, { loss: "1.23" });
    p.stop();
    p.update(9);
    p.stop();`);
  assert.equal(stderr, "");
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[0], /^epoch 1: 25% \| 1\/4 steps \| loss 1\.23 \| ETA \d+:\d\d$/);
  assert.match(lines[4], /^epoch 1: 100% \| 4\/4 steps \| loss 1\.23 \| took \d+:\d\d$/);
});

Deno.test("progress goes to stderr by default, shows bytes, and throttles lines", async () => {
  const { stdout, stderr } = await runWithPipe(`
    const p = progress({ label: "download", total: 2_500_000, unit: "B" });
    for (let i = 1; i <= 100; i++) p.update(i * 25_000);
    p.stop();`);
  assert.equal(stdout, "");
  assert.equal(stderr, "download: 100% | 2.5 MB/2.5 MB | took 0:00\n");
});
