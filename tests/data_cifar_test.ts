import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SelfsupError } from "../src/errors.ts";
import { loadCifar } from "../src/data/cifar.ts";
import { readTar } from "../src/data/tar.ts";

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const CIFAR10_DIR = (() => {
  const dir = Deno.env.get("CIFAR10_DIR") ?? "../shared/data/cifar-10-batches-bin";
  return isAbsolute(dir) ? dir : join(REPO, dir);
})();
const RECORD = 3073;

async function realCifarDir(): Promise<string> {
  try {
    await Deno.stat(join(CIFAR10_DIR, "test_batch.bin"));
  } catch {
    throw new Error(
      `CIFAR-10 not found at ${CIFAR10_DIR}: set CIFAR10_DIR to a cifar-10-batches-bin folder`,
    );
  }
  return CIFAR10_DIR;
}

async function readRecord(file: string, index: number, size = RECORD): Promise<Uint8Array> {
  using f = await Deno.open(file);
  await f.seek(index * size, Deno.SeekMode.Start);
  const record = new Uint8Array(size);
  let got = 0;
  while (got < size) got += (await f.read(record.subarray(got)))!;
  return record;
}

/** Checks that image i is record r's planar bytes in HWC order. */
function assertSameImage(hwc: Uint8Array, record: Uint8Array, labelBytes: number) {
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      for (let c = 0; c < 3; c++) {
        assert.equal(hwc[(y * 32 + x) * 3 + c], record[labelBytes + c * 1024 + y * 32 + x]);
      }
    }
  }
}

Deno.test("CIFAR-10 from the shared copy: counts, labels, pixel order, balance", async () => {
  const dir = await realCifarDir();
  const [train, test] = await Promise.all([
    loadCifar({ split: "train", path: dir, download: false }),
    loadCifar({ split: "test", path: dirname(dir), download: false }),
  ]);
  assert.equal(train.length, 50000);
  assert.equal(test.length, 10000);
  assert.equal(train.height, 32);
  assert.deepEqual(test.classNames.slice(0, 3), ["airplane", "automobile", "bird"]);
  assert.equal(test.classNames.length, 10);
  // Records at file starts, ends and in the middle, read independently of the loader.
  for (
    const [file, record, index] of [["data_batch_1.bin", 0, 0], ["data_batch_1.bin", 1, 1], [
      "data_batch_3.bin",
      9999,
      29999,
    ], ["data_batch_5.bin", 4321, 44321]] as const
  ) {
    const raw = await readRecord(join(dir, file), record);
    assert.equal(train.label(index), raw[0]);
    assertSameImage(train.image(index), raw, 1);
  }
  for (const index of [0, 1, 5000, 9999]) {
    const raw = await readRecord(join(dir, "test_batch.bin"), index);
    assert.equal(test.label(index), raw[0]);
    assertSameImage(test.image(index), raw, 1);
  }
  const counts = new Array(10).fill(0);
  for (let i = 0; i < test.length; i++) counts[test.label(i)]++;
  assert.deepEqual(counts, new Array(10).fill(1000));
});

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "selfsup_cifar_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const META10 = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";

Deno.test("a truncated or wrong-size CIFAR file is a clear error naming it", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "batches.meta.txt"), META10);
    await Deno.writeFile(join(dir, "test_batch.bin"), new Uint8Array(1234));
    await assert.rejects(
      loadCifar({ split: "test", path: dir, download: false }),
      (e) =>
        e instanceof SelfsupError &&
        e.message === "Cannot read CIFAR-10: test_batch.bin has 1234 bytes, expected 30730000",
    );
    await assert.rejects(
      loadCifar({ split: "train", path: dir, download: false }),
      (e) => e instanceof SelfsupError && /data_batch_1\.bin is missing in /.test(e.message),
    );
    await Deno.writeFile(join(dir, "train.bin"), new Uint8Array(100));
    await assert.rejects(
      loadCifar({ variant: "cifar100", split: "train", path: dir, download: false }),
      (e) =>
        e instanceof SelfsupError && /train\.bin has 100 bytes, expected 153700000/.test(e.message),
    );
  });
});

/** A ustar archive of the given files (test helper; the reader under test is separate). */
function makeTar(files: { name: string; bytes: Uint8Array }[]): Uint8Array<ArrayBuffer> {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const { name, bytes } of files) {
    const header = new Uint8Array(512);
    header.set(enc.encode(name), 0);
    header.set(enc.encode("0000644\0"), 100);
    header.set(enc.encode(bytes.length.toString(8).padStart(11, "0") + "\0"), 124);
    header.set(enc.encode("        "), 148);
    header[156] = "0".charCodeAt(0);
    header.set(enc.encode("ustar\x0000"), 257);
    const sum = header.reduce((a, b) => a + b, 0);
    header.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    blocks.push(header, bytes, new Uint8Array((512 - (bytes.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const b of blocks) out.set(b, offset), offset += b.length;
  return out;
}

async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A CIFAR-10-shaped test batch: record r has label r % 10 and a pattern in its first pixels. */
function fakeTestBatch(): Uint8Array {
  const bytes = new Uint8Array(10000 * RECORD);
  for (let r = 0; r < 10000; r++) {
    bytes[r * RECORD] = r % 10;
    for (let k = 0; k < 3072; k += 97) bytes[r * RECORD + 1 + k] = (r + k) & 255;
  }
  return bytes;
}

let fakeArchive: Promise<{ gz: Uint8Array; batch: Uint8Array }> | null = null;
function cifarArchive() {
  fakeArchive ??= (async () => {
    const batch = fakeTestBatch();
    const tar = makeTar([
      { name: "cifar-10-batches-bin/batches.meta.txt", bytes: new TextEncoder().encode(META10) },
      { name: "cifar-10-batches-bin/readme.html", bytes: new TextEncoder().encode("<p>hi</p>") },
      { name: "cifar-10-batches-bin/test_batch.bin", bytes: batch },
    ]);
    return { gz: await gzip(tar), batch };
  })();
  return fakeArchive;
}

/**
 * Both splits of CIFAR-10: data_batch_k holds labels shifted by k and black images (quick to
 * compress), test_batch is {@linkcode fakeTestBatch}'s.
 */
let fakeFullArchive: Promise<Uint8Array> | null = null;
function cifarFullArchive() {
  // node:zlib, many times quicker than CompressionStream on these 184 MB.
  fakeFullArchive ??= Promise.resolve(gzipSync(makeTar([
    { name: "cifar-10-batches-bin/batches.meta.txt", bytes: new TextEncoder().encode(META10) },
    ...[1, 2, 3, 4, 5].map((k) => ({
      name: `cifar-10-batches-bin/data_batch_${k}.bin`,
      bytes: labelsOnlyBatch(k),
    })),
    { name: "cifar-10-batches-bin/test_batch.bin", bytes: fakeTestBatch() },
  ])));
  return fakeFullArchive;
}

function labelsOnlyBatch(shift: number): Uint8Array {
  const bytes = new Uint8Array(10000 * RECORD);
  for (let r = 0; r < 10000; r++) bytes[r * RECORD] = (r + shift) % 10;
  return bytes;
}

/** Runs `fn` and counts the gzip streams decompressed meanwhile. */
async function countDecompressions(fn: () => Promise<void>): Promise<number> {
  const Original = globalThis.DecompressionStream;
  let count = 0;
  globalThis.DecompressionStream = class extends Original {
    constructor(format: CompressionFormat) {
      super(format);
      count++;
    }
  };
  try {
    await fn();
  } finally {
    globalThis.DecompressionStream = Original;
  }
  return count;
}

Deno.test("the tar reader lists members with their sizes and contents", async () => {
  const tar = makeTar([
    { name: "a/one.txt", bytes: new TextEncoder().encode("hello") },
    { name: "a/two.bin", bytes: new Uint8Array(600).fill(7) },
  ]);
  const seen: [string, number, number][] = [];
  for await (const entry of readTar(new Blob([tar]).stream(), "test.tar")) {
    const body = entry.name.endsWith(".txt") ? await entry.bytes() : null;
    seen.push([entry.name, entry.size, body ? body.length : -1]);
  }
  assert.deepEqual(seen, [["a/one.txt", 5, 5], ["a/two.bin", 600, -1]]);
  await assert.rejects(
    (async () => {
      for await (const _ of readTar(new Blob([tar.slice(0, 700)]).stream(), "cut.tar")) {
        // reading on reaches the cut
      }
    })(),
    (e) =>
      e instanceof SelfsupError && /cut\.tar: the archive ends inside a member/.test(e.message),
  );
});

Deno.test("CIFAR-10 from a .tar.gz the test builds, and from a folder holding it", async () => {
  const { gz, batch } = await cifarArchive();
  await withTempDir(async (dir) => {
    const archive = join(dir, "cifar-10-binary.tar.gz");
    await Deno.writeFile(archive, gz);
    const test = await loadCifar({ split: "test", path: archive, download: false });
    assert.equal(test.length, 10000);
    for (const r of [0, 7, 9999]) {
      assert.equal(test.label(r), r % 10);
      assertSameImage(test.image(r), batch.subarray(r * RECORD, (r + 1) * RECORD), 1);
    }
    // Given the folder, the archive is extracted beside it and read from there.
    const again = await loadCifar({ split: "test", path: dir, download: false });
    assert.deepEqual(again.pixels, test.pixels);
    assert.ok((await Deno.stat(join(dir, "cifar-10-batches-bin", "test_batch.bin"))).isFile);
    const damaged = join(dir, "damaged.tar.gz");
    await Deno.writeFile(damaged, gz.slice(0, gz.length >> 1));
    await assert.rejects(
      loadCifar({ split: "test", path: damaged, download: false }),
      (e) => e instanceof SelfsupError && e.message.includes("damaged.tar.gz"),
    );
  });
});

Deno.test("both splits from a .tar.gz decompress it once, into the folder beside it", async () => {
  const gz = await cifarFullArchive();
  await withTempDir(async (dir) => {
    const archive = join(dir, "cifar-10-binary.tar.gz");
    await Deno.writeFile(archive, gz);
    const load = (split: "train" | "test") => loadCifar({ split, path: archive, download: false });
    const decompressions = await countDecompressions(async () => {
      // At once, as a caller may: the second load waits for the first one's extraction.
      const [train, test] = await Promise.all([load("train"), load("test")]);
      assert.equal(train.length, 50000);
      assert.equal(test.length, 10000);
      assert.deepEqual(train.classNames, test.classNames);
      for (const [i, label] of [[0, 1], [9999, 0], [10000, 2], [49999, 4]]) {
        assert.equal(train.label(i), label);
      }
      assert.equal(test.label(9999), 9);
      // Later loads read the folder too.
      assert.deepEqual((await load("test")).pixels, test.pixels);
    });
    assert.equal(decompressions, 1);
    assert.deepEqual(await listDir(dir), ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]);
    assert.deepEqual(await listDir(join(dir, "cifar-10-batches-bin")), [
      ".selfsup-source.json",
      "batches.meta.txt",
      "data_batch_1.bin",
      "data_batch_2.bin",
      "data_batch_3.bin",
      "data_batch_4.bin",
      "data_batch_5.bin",
      "test_batch.bin",
    ]);
    // Garbage of the same size and time: only the folder can still give the images.
    const { mtime } = await Deno.stat(archive);
    await Deno.writeFile(archive, new Uint8Array(gz.length).fill(1));
    await Deno.utime(archive, mtime!, mtime!);
    assert.equal((await load("test")).label(9999), 9);
    // A changed archive is extracted again; a damaged one is an error, and the folder stays.
    await Deno.utime(archive, new Date(), new Date());
    await assert.rejects(
      load("test"),
      (e) => e instanceof SelfsupError && e.message.includes("cifar-10-binary.tar.gz"),
    );
    assert.deepEqual(await listDir(dir), ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]);
    await Deno.writeFile(archive, gz);
    assert.equal(await countDecompressions(async () => void await load("test")), 1);
  });
});

Deno.test("where the folder beside a .tar.gz cannot be written, the archive is read", async () => {
  const { gz, batch } = await cifarArchive();
  await withTempDir(async (dir) => {
    const archive = join(dir, "cifar-10-binary.tar.gz");
    await Deno.writeFile(archive, gz);
    // Without write permission: creating the folder fails as on a read-only file system.
    const module = new URL("../src/data/cifar.ts", import.meta.url).href;
    const script = `
      import { loadCifar } from ${JSON.stringify(module)};
      const test = await loadCifar({ split: "test", path: ${
      JSON.stringify(archive)
    }, download: false });
      console.log(JSON.stringify([test.length, test.label(7), test.image(9999)[0]]));`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", "--allow-read", "--allow-env", "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = child.stdin.getWriter();
    await stdin.write(new TextEncoder().encode(script));
    await stdin.close();
    const out = await child.output();
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    assert.ok(out.success, text(out.stderr));
    assert.deepEqual(JSON.parse(text(out.stdout)), [10000, 7, batch[9999 * RECORD + 1]]);
    assert.deepEqual(await listDir(dir), ["cifar-10-binary.tar.gz"]);
  });
});

Deno.test("CIFAR-100 uses the fine label and fine_label_names.txt", async () => {
  await withTempDir(async (dir) => {
    const records = new Uint8Array(10000 * 3074);
    for (let r = 0; r < 10000; r++) {
      records[r * 3074] = r % 20;
      records[r * 3074 + 1] = r % 100;
      records[r * 3074 + 2 + 1024 + 5] = 200; // green, pixel 5
    }
    await Deno.writeFile(join(dir, "test.bin"), records);
    const names = Array.from({ length: 100 }, (_, k) => `class_${k}`);
    await Deno.writeTextFile(join(dir, "fine_label_names.txt"), names.join("\n") + "\n");
    const test = await loadCifar({
      variant: "cifar100",
      split: "test",
      path: dir,
      download: false,
    });
    assert.equal(test.length, 10000);
    assert.equal(test.label(123), 23);
    assert.equal(test.classNames[99], "class_99");
    assert.equal(test.image(0)[5 * 3 + 1], 200);
  });
});

/** Serves `body` on 127.0.0.1; `cut` makes the response stop after half the promised bytes. */
async function withServer(body: Uint8Array, fn: (url: string) => Promise<void>, cut = false) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    if (!cut) return new Response(body as Uint8Array<ArrayBuffer>);
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(body.slice(0, body.length >> 1));
        controller.close();
      },
    });
    return new Response(stream, { headers: { "content-length": String(body.length) } });
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/cifar-10-binary.tar.gz`);
  } finally {
    await server.shutdown();
  }
}

async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("a download with a wrong MD5 or cut short leaves nothing that counts as data", async () => {
  const { gz } = await cifarArchive();
  const md5 = createHash("md5").update(gz).digest("hex");
  await withTempDir(async (dir) => {
    await withServer(gz, async (url) => {
      await assert.rejects(
        loadCifar({
          split: "test",
          path: dir,
          source: { url, md5: "0".repeat(32) },
          showProgress: false,
        }),
        (e) => e instanceof SelfsupError && /MD5/.test(e.message) && e.message.includes(dir),
      );
      assert.deepEqual(await listDir(dir), []);
      await assert.rejects(
        loadCifar({ split: "test", path: dir, download: false }),
        (e) => e instanceof SelfsupError && /Cannot find CIFAR-10 in /.test(e.message),
      );
    });
    await withServer(gz, async (url) => {
      await assert.rejects(
        loadCifar({ split: "test", path: dir, source: { url, md5 }, showProgress: false }),
        (e) => e instanceof SelfsupError && e.message.startsWith(`Cannot download ${url}`),
      );
      assert.deepEqual(await listDir(dir), []);
    }, true);
    // With the right MD5 the archive is fetched, extracted, and then removed.
    await withServer(gz, async (url) => {
      const test = await loadCifar({
        split: "test",
        path: dir,
        source: { url, md5 },
        showProgress: false,
      });
      assert.equal(test.length, 10000);
    });
    assert.deepEqual(await listDir(dir), ["cifar-10-batches-bin"]);
    const cached = await loadCifar({ split: "test", path: dir, download: false });
    assert.equal(cached.label(9999), 9);
  });
});

Deno.test("offline, the error says where to put the files", async () => {
  // A port that was just released: the connection is refused.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await withTempDir(async (dir) => {
    const url = `http://127.0.0.1:${port}/cifar-10-binary.tar.gz`;
    await assert.rejects(
      loadCifar({
        split: "train",
        path: dir,
        source: { url, md5: "0".repeat(32) },
        showProgress: false,
      }),
      (e) =>
        e instanceof SelfsupError &&
        e.message.startsWith(`Cannot download ${url}`) &&
        e.message.includes(`Put cifar-10-binary.tar.gz, or the cifar-10-batches-bin folder`) &&
        e.message.endsWith(`in ${dir}`),
    );
  });
});
