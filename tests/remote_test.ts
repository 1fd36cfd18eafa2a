// Every module resolves when the tasks run from a URL: the repository is served on loopback
// and `deno run -A http://…/tasks/pretrain.ts` runs from an empty folder, as a user would.
import { assertEquals } from "./_assert.ts";

const root = new URL("..", import.meta.url).pathname;
const types: Record<string, string> = {
  ts: "application/typescript",
  wgsl: "text/plain",
  json: "application/json",
};

Deno.test("the pretrain task runs from a remote URL in an empty folder", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    if (path.includes("..")) return new Response("no", { status: 403 });
    try {
      const body = await Deno.readFile(`${root}${path.slice(1)}`);
      const type = types[path.split(".").pop()!] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/tasks/pretrain.ts`;
    const cwd = await Deno.makeTempDir();
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-config",
        // Deno keeps remote modules by URL: a module cached from an older checkout served on
        // the same port would stand in for this one's.
        `--reload=http://127.0.0.1:${server.addr.port}`,
        url,
        ...["--stem", "imagenet", "--width", "4", "--projection-dim", "8", "--limit", "64"],
        ...["--batch-size", "16", "--epochs", "1", "--workers", "1", "--no-probe", "--out", "run"],
      ],
      cwd,
      stdout: "null",
      stderr: "piped",
    }).output();
    assertEquals(code, 0, `remote run failed: ${new TextDecoder().decode(stderr)}`);
    const files = [...Deno.readDirSync(`${cwd}/run`)].map((e) => e.name).sort();
    assertEquals(
      files,
      ["checkpoint.safetensors", "config.json", "metrics.jsonl", "plot.svg", "summary.json"],
      "run folder",
    );
  } finally {
    await server.shutdown();
  }
});
