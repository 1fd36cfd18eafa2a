import assert from "node:assert/strict";
import { join } from "node:path";
// The main imagescript entry encodes PNG and JPEG test images; it loads a native addon, so it
// stays out of src/ (which decodes through the wasm codecs) and out of src/deps.ts, whose
// importers would all need --allow-ffi if it were there.
// deno-lint-ignore no-import-prefix
import { Image } from "npm:imagescript@1.3.1";
import { SelfsupError } from "../src/errors.ts";
import { loadImageFolder } from "../src/data/image_folder.ts";
import { loadImages } from "../src/data/load.ts";

/** A solid image of (r, g, b), with a white top-left quarter so orientation is visible. */
function solid(width: number, height: number, [r, g, b]: number[]): Image {
  const img = new Image(width, height);
  img.fill(Image.rgbaToColor(r, g, b, 255));
  img.drawBox(1, 1, width / 2, height / 2, Image.rgbaToColor(255, 255, 255, 255));
  return img;
}

async function withFolder(
  files: Record<string, Uint8Array>,
  fn: (root: string, cacheDir: string) => Promise<void>,
) {
  const root = await Deno.makeTempDir({ prefix: "selfsup_folder_" });
  const cacheDir = await Deno.makeTempDir({ prefix: "selfsup_cache_" });
  try {
    for (const [rel, bytes] of Object.entries(files)) {
      await Deno.mkdir(join(root, rel, ".."), { recursive: true });
      await Deno.writeFile(join(root, rel), bytes);
    }
    await fn(root, cacheDir);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(cacheDir, { recursive: true });
  }
}

Deno.test("an image folder of PNGs and JPEGs loads resized, labelled by sorted class", async () => {
  const files = {
    "zebra/a.png": await solid(64, 64, [200, 10, 10]).encode(),
    "zebra/nested/b.PNG": await solid(40, 40, [10, 200, 10]).encode(),
    "apple/c.jpg": await solid(32, 32, [10, 10, 200]).encodeJPEG(95),
    "apple/notes.txt": new TextEncoder().encode("not an image"),
    ".hidden/d.png": await solid(8, 8, [0, 0, 0]).encode(),
  };
  await withFolder(files, async (root, cacheDir) => {
    const ds = await loadImageFolder(root, { height: 16, cacheDir });
    assert.deepEqual(ds.classNames, ["apple", "zebra"]);
    assert.equal(ds.length, 3);
    assert.deepEqual([0, 1, 2].map((i) => ds.label(i)), [0, 1, 1]);
    assert.equal(ds.width, 16);
    assert.equal(ds.image(0).length, 16 * 16 * 3);
    // Bottom-right pixels keep the fill colour (JPEG within its loss); top-left is white.
    const pixel = (
      i: number,
      x: number,
      y: number,
    ) => [...ds.image(i).subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3)];
    for (
      const [i, colour] of [[0, [10, 10, 200]], [1, [200, 10, 10]], [2, [10, 200, 10]]] as const
    ) {
      pixel(i, 14, 14).forEach((v, c) =>
        assert.ok(Math.abs(v - colour[c]) <= 6, `image ${i}: ${v}`)
      );
      pixel(i, 3, 3).forEach((v) => assert.ok(v >= 245, `image ${i} top-left: ${v}`));
    }
  });
});

async function loadInSubprocess(root: string, cacheDir: string) {
  const module = new URL("../src/data/image_folder.ts", import.meta.url).href;
  const script = `
    import { loadImageFolder } from ${JSON.stringify(module)};
    const ds = await loadImageFolder(${JSON.stringify(root)}, { height: 8, cacheDir: ${
    JSON.stringify(cacheDir)
  } });
    console.log(JSON.stringify([...ds.pixels]));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return {
    ok: out.success,
    pixels: out.success ? JSON.parse(text(out.stdout)) : null,
    error: text(out.stderr),
  };
}

Deno.test("the decoded folder is cached in memory and on disk, keyed by size and mtime", async () => {
  const files = {
    "a/1.png": await solid(20, 10, [90, 30, 30]).encode(),
    "b/2.png": await solid(10, 20, [30, 90, 30]).encode(),
  };
  await withFolder(files, async (root, cacheDir) => {
    const first = await loadImageFolder(root, { height: 8, cacheDir });
    assert.equal(await loadImageFolder(root, { height: 8, cacheDir }), first);
    const cacheFiles = await Array.fromAsync(Deno.readDir(join(cacheDir, "image-folders")));
    assert.deepEqual(cacheFiles.map((f) => f.name.endsWith(".bin")), [true]);
    // Garbage of the same size with the old mtime: only the cache can still give the pixels.
    const path = join(root, "a/1.png");
    const { size, mtime } = await Deno.stat(path);
    await Deno.writeFile(path, new Uint8Array(size).fill(1));
    await Deno.utime(path, mtime!, mtime!);
    const cached = await loadInSubprocess(root, cacheDir);
    assert.ok(cached.ok, cached.error);
    assert.deepEqual(cached.pixels, [...first.pixels]);
    // A new mtime is a new key: the folder is decoded again, and the garbage is found.
    await Deno.utime(path, new Date(), new Date());
    const fresh = await loadInSubprocess(root, cacheDir);
    assert.ok(!fresh.ok && fresh.error.includes("1.png"), fresh.error);
  });
});

Deno.test("empty folders and undecodable files are clear errors naming them", async () => {
  await withFolder({ "readme.txt": new Uint8Array(3) }, async (root, cacheDir) => {
    await assert.rejects(
      loadImageFolder(root, { cacheDir }),
      (e) => e instanceof SelfsupError && /has no class subfolders/.test(e.message),
    );
    await Deno.mkdir(join(root, "cats"));
    await assert.rejects(
      loadImageFolder(root, { cacheDir }),
      (e) =>
        e instanceof SelfsupError && /class folder cats has no PNG or JPEG images/.test(e.message),
    );
    await Deno.writeTextFile(join(root, "cats", "broken.png"), "definitely not a png");
    await assert.rejects(
      loadImageFolder(root, { cacheDir }),
      (e) =>
        e instanceof SelfsupError &&
        e.message ===
          `Cannot decode ${join(root, "cats", "broken.png")}: it is neither a PNG nor a JPEG file`,
    );
    const png = await solid(8, 8, [1, 2, 3]).encode();
    await Deno.writeFile(join(root, "cats", "broken.png"), png.slice(0, 40));
    await assert.rejects(
      loadImageFolder(root, { cacheDir }),
      (e) =>
        e instanceof SelfsupError &&
        e.message.startsWith(`Cannot decode ${join(root, "cats", "broken.png")}: `),
    );
  });
  await assert.rejects(
    loadImageFolder("/nonexistent/selfsup/folder"),
    (e) => e instanceof SelfsupError && /does not exist/.test(e.message),
  );
});

Deno.test("train/ and test/ (or val/) with different classes are an error naming both", async () => {
  const png = await solid(8, 8, [40, 80, 120]).encode();
  const files = {
    "train/ant/1.png": png,
    "train/bee/2.png": png,
    "train/cat/3.png": png,
    "val/ant/4.png": png,
    "val/cat/5.png": png,
  };
  await withFolder(files, async (root, cacheDir) => {
    const config = { name: "folder", path: root, imageSize: 8 } as const;
    // Either split: training must not start on a folder whose test labels would be shifted.
    for (const split of ["train", "test"] as const) {
      await assert.rejects(
        loadImages(config, split),
        (e) =>
          e instanceof SelfsupError &&
          e.message.includes("train/ has ant, bee, cat; val/ has ant, cat"),
      );
    }
    await Deno.mkdir(join(root, "test/ant"), { recursive: true });
    await Deno.writeFile(join(root, "test/ant/6.png"), png);
    await assert.rejects(
      loadImages(config, "test"),
      (e) =>
        e instanceof SelfsupError &&
        e.message.includes("train/ has ant, bee, cat; test/ has ant"),
    );
    for (const name of ["bee", "cat"]) {
      await Deno.mkdir(join(root, "test", name));
      await Deno.writeFile(join(root, "test", name, "7.png"), png);
    }
    // The check only lists train/: an image there that cannot be decoded is not read.
    await Deno.writeTextFile(join(root, "train/bee/broken.png"), "not a png");
    // Decoded here with the test's cache folder, then found in the memory cache.
    const expected = await loadImageFolder(join(root, "test"), { height: 8, cacheDir });
    const test = await loadImages(config, "test");
    assert.equal(test, expected);
    assert.deepEqual(test.classNames, ["ant", "bee", "cat"]);
  });
});

Deno.test("a folder without train/ holds out a fifth of its images, disjoint from training and fixed by the seed", async () => {
  // 11 images of distinct colours: 6 of class "a", 5 of class "b".
  const colour = (i: number) => [20 * i, 250 - 20 * i, 7 * i];
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 11; i++) {
    files[`${i < 6 ? "a" : "b"}/${i}.png`] = await solid(8, 8, colour(i)).encode();
  }
  await withFolder(files, async (root, cacheDir) => {
    // Decoded into the memory cache with the test's cache folder, which loadImages then finds.
    const all = await loadImageFolder(root, { height: 8, cacheDir });
    // Which image each is, by the colour of its bottom-right pixel.
    const identify = (image: Uint8Array) => {
      const at = (7 * 8 + 7) * 3;
      const i = [...Array(11).keys()].find((k) =>
        colour(k).every((v, c) => Math.abs(image[at + c] - v) <= 1)
      );
      if (i === undefined) throw new Error(`unknown image ${image.subarray(at, at + 3)}`);
      return i;
    };
    const every = [...Array(11).keys()];
    const sorted = (indices: number[]) => [...indices].sort((x, y) => x - y);
    assert.deepEqual(sorted(every.map((k) => identify(all.image(k)))), every, "decoded images");
    const split = async (seed: number, limit?: number) => {
      const config = { name: "folder", path: root, imageSize: 8, seed, limit } as const;
      const [train, test] = [await loadImages(config, "train"), await loadImages(config, "test")];
      const images = (ds: typeof train) =>
        [...Array(ds.length).keys()].map((k) => {
          const i = identify(ds.image(k));
          assert.equal(ds.label(k), i < 6 ? 0 : 1, `label of image ${i}`);
          return i;
        });
      assert.deepEqual([train.classNames, test.classNames], [["a", "b"], ["a", "b"]]);
      return { train: images(train), test: images(test) };
    };
    const first = await split(0);
    assert.equal(first.test.length, 2, "a fifth of 11, rounded down");
    assert.deepEqual(sorted([...first.train, ...first.test]), every, "train and test: all, once");
    assert.deepEqual(await split(0), first, "the same seed holds out the same images");
    const others = [await split(1), await split(2)];
    assert.ok(
      others.some((o) => o.test.join() !== first.test.join()),
      "seeds 1, 2 hold out others",
    );
    // --limit takes from the training images only.
    const limited = await split(0, 4);
    assert.deepEqual(limited, { train: first.train.slice(0, 4), test: first.test });
  });
});
