// Text data: tokenizers, text files and folders (and the one line bad text gets), the
// synthetic corpus, packing into blocks, BERT's masking and next-sentence pairs, and the
// token loader's batches.
import assert from "node:assert/strict";
import { loadDataset } from "../src/data/load.ts";
import { SYNTHETIC_TOPICS, syntheticText } from "../src/data/synthetic_text.ts";
import { Random } from "../src/data/random.ts";
import {
  firstInvalidUtf8,
  isTextDataset,
  ListTextDataset,
  loadTextFolder,
  readTextFile,
} from "../src/data/text.ts";
import {
  documentBlocks,
  packCorpus,
  type TextViews,
  TokenLoader,
  TokenWriter,
} from "../src/data/text_batcher.ts";
import { tokenizerNamed } from "../src/data/tokenizer.ts";
import { SelfsupError } from "../src/errors.ts";
import { assertRejects } from "./_assert.ts";

const bytes = tokenizerNamed("bytes");

Deno.test("the byte tokenizer is UTF-8 with four special tokens; BERT's vocabulary comes from its package", () => {
  assert.deepEqual(Array.from(bytes.encode("aé")), [97, 0xc3, 0xa9]);
  assert.deepEqual([bytes.vocabSize, bytes.pad, bytes.cls, bytes.sep, bytes.mask], [
    260,
    256,
    257,
    258,
    259,
  ]);
  assert.equal(bytes.decode([257, 104, 105, 258, 256]), "[CLS]hi[SEP][PAD]");
  const bert = tokenizerNamed("bert");
  assert.deepEqual([bert.vocabSize, bert.pad, bert.cls, bert.sep, bert.mask], [
    30522,
    0,
    101,
    102,
    103,
  ]);
  // bert-base-uncased's ids of "the cats run": lower-cased whole words.
  assert.deepEqual(Array.from(bert.encode("The cats run")), [1996, 8870, 2448]);
  assert.deepEqual(Array.from(bert.encode("  ")), []);
  assert.throws(() => tokenizerNamed("gpt9"), SelfsupError);
});

Deno.test("bad text files get one line each: binary, empty, invalid UTF-8, missing", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [string, Uint8Array, string][] = [
    ["binary.txt", Uint8Array.of(0x50, 0x4b, 0x03, 0x04, 0, 0, 7), "NUL bytes"],
    ["empty.txt", new TextEncoder().encode(" \n\n "), "it is empty"],
    [
      "latin1.txt",
      Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 0x20, 0x6f, 0x6b),
      "not valid UTF-8 (at byte 3)",
    ],
  ];
  for (const [name, data, message] of cases) {
    await Deno.writeFile(`${dir}/${name}`, data);
    const error = await assertRejects(() => readTextFile(`${dir}/${name}`), SelfsupError, message);
    assert.ok(!error.message.includes("\n") && error.message.includes(name), error.message);
  }
  await assertRejects(() => loadTextFolder(`${dir}/none`), SelfsupError, "does not exist");
  // The validator agrees with a fatal TextDecoder, and points at the start of a broken
  // sequence, on random bytes and on UTF-8 cut or spliced anywhere.
  const random = new Random(9);
  const valid = new TextEncoder().encode("añ€😀\u{10FFFF}\uD7FF");
  for (let trial = 0; trial < 3000; trial++) {
    const data = trial % 2
      ? Uint8Array.from({ length: 1 + random.int(6) }, () => random.int(256))
      : Uint8Array.of(...valid.subarray(0, random.int(valid.length + 1)), random.int(256));
    let decodes = true;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(data);
    } catch {
      decodes = false;
    }
    const bad = firstInvalidUtf8(data);
    assert.equal(bad === -1, decodes, `[${data}]`);
    if (bad >= 0) new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(0, bad));
  }
  // A folder is refused for its first bad file.
  await assertRejects(() => loadTextFolder(dir), SelfsupError, "binary.txt");
  await Deno.mkdir(`${dir}/empty-folder`);
  await assertRejects(() => loadTextFolder(`${dir}/empty-folder`), SelfsupError, "no .txt files");
});

Deno.test("text loads from a file (paragraphs), a folder, or a labelled folder with its splits", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/one.txt`,
    "First line. Second one!\nThird\n\n  \nNext paragraph?  Yes.\n",
  );
  const file = await loadTextFolder(`${dir}/one.txt`);
  assert.equal(file.length, 2);
  assert.deepEqual(file.sentences(0), ["First line.", "Second one!", "Third"]);
  assert.deepEqual(file.sentences(1), ["Next paragraph?", "Yes."]);
  assert.deepEqual(file.classNames, ["text"]);
  await Deno.mkdir(`${dir}/flat`);
  await Deno.writeTextFile(`${dir}/flat/a.txt`, "A.");
  await Deno.writeTextFile(`${dir}/flat/b.TXT`, "B.\n\nC.");
  await Deno.writeTextFile(`${dir}/flat/ignored.md`, "not text");
  const flat = await loadTextFolder(`${dir}/flat`);
  assert.deepEqual([0, 1, 2].map((i) => flat.sentences(i)[0]), ["A.", "B.", "C."]);
  // A labelled folder: classes are subfolders, each file one document.
  for (const split of ["train", "test"]) {
    for (const [c, words] of [["cats", "meow"], ["dogs", "woof"]]) {
      await Deno.mkdir(`${dir}/labelled/${split}/${c}`, { recursive: true });
      for (let i = 0; i < 3; i++) {
        await Deno.writeTextFile(`${dir}/labelled/${split}/${c}/${i}.txt`, `${words} ${i}. Again.`);
      }
    }
  }
  const test = await loadDataset({ name: "text", path: `${dir}/labelled` }, "test");
  assert.ok(isTextDataset(test));
  assert.deepEqual([test.length, test.classNames, test.label(3)], [6, ["cats", "dogs"], 1]);
  assert.deepEqual(test.sentences(4), ["woof 1.", "Again."]);
  // Without train/ and test/, a fifth of the documents is held out.
  const all = { name: "text", path: `${dir}/labelled/train` } as const;
  const [train, held] = [await loadDataset(all, "train"), await loadDataset(all, "test")];
  assert.deepEqual([train.length, held.length], [5, 1]);
  await Deno.mkdir(`${dir}/labelled/test/birds`);
  await Deno.writeTextFile(`${dir}/labelled/test/birds/0.txt`, "tweet");
  await assertRejects(
    () => loadDataset({ name: "text", path: `${dir}/labelled` }, "train"),
    SelfsupError,
    "different classes",
  );
  await assertRejects(() => loadDataset({ name: "text" }, "train"), SelfsupError, "--data PATH");
});

Deno.test("the synthetic corpus: deterministic, balanced topics, facts repeated from context", () => {
  const a = syntheticText({ count: 50, seed: 3 });
  const b = syntheticText({ count: 50, seed: 3 });
  assert.deepEqual(a.documents, b.documents);
  assert.notDeepEqual(syntheticText({ count: 50, seed: 4 }).documents, a.documents);
  assert.notDeepEqual(syntheticText({ count: 50, seed: 3, split: "test" }).documents, a.documents);
  assert.deepEqual(a.classNames, SYNTHETIC_TOPICS);
  const counts = new Array(5).fill(0);
  for (let i = 0; i < a.length; i++) counts[a.label(i)]++;
  assert.deepEqual(counts, [10, 10, 10, 10, 10]);
  const stop = new Set(["the", "a", "and", "is", "are", "in", "to", "by", "for", "at", "with"]);
  const words = (text: string) => text.toLowerCase().match(/[a-z']+/g)!.filter((w) => !stop.has(w));
  for (let i = 0; i < a.length; i++) {
    const [intro, ...rest] = a.sentences(i);
    assert.ok(rest.length === 2 || rest.length === 3, `document ${i}`);
    // What the first sentence says of the subject comes back later.
    const later = new Set(words(rest.join(" ")));
    assert.ok(words(intro).some((w) => later.has(w)), [intro, ...rest].join(" "));
    // Verbs agree with a subject of one name or two.
    const plural = intro.split(" ")[1] === "and";
    const wrong = plural
      ? /^\S+ and \S+ (is|plays|bakes|travels) /
      : /^\S+ (are|play|bake|travel) /;
    assert.ok(!wrong.test(intro), intro);
  }
  assert.ok(a.documents.some((d) => d[0].split(" ")[1] === "and"), "some plural subjects");
});

/** Documents of short sentences "s<i>." (bytes: 3 or 4 tokens with their space). */
function counting(documents: number[]): ListTextDataset {
  let n = 0;
  const docs = documents.map((size) => Array.from({ length: size }, () => `s${n++}.`));
  return new ListTextDataset(docs, Int32Array.from(docs, (_, i) => i % 2), ["even", "odd"]);
}

const views = (masking: TextViews["masking"], pairs = false, t = 16): TextViews => ({
  tokenizer: "bytes",
  sequenceLength: t,
  masking,
  pairs,
});

Deno.test("packing fills blocks with whole sentences across documents and cuts long ones", () => {
  const corpus = counting([3, 4, 5]); // 12 sentences: s0.…s9. of 4 tokens, s10., s11. of 5
  const packed = packCorpus(corpus, bytes, views(null));
  const text = (block: readonly Int32Array[]) => block.map((s) => bytes.decode(s)).join("");
  assert.deepEqual(packed.blocks.map(text), [
    "s0. s1. s2. ",
    "s3. s4. s5. ",
    "s6. s7. s8. ",
    "s9. s10. s11. ",
  ]);
  assert.deepEqual(Array.from(packed.labels), [0, 1, 1, 0]);
  for (const block of packed.blocks) assert.ok(block.reduce((n, s) => n + s.length, 0) <= 14);
  // A sentence longer than a block is cut into pieces that each fill one.
  const long = new ListTextDataset([["x".repeat(30)]], Int32Array.of(0), ["text"]);
  assert.deepEqual(packCorpus(long, bytes, views(null)).blocks.map((b) => b[0].length), [
    14,
    14,
    3,
  ]);
});

Deno.test("sequences are [CLS] text [SEP] [PAD]…; BERT's masking chooses 15% of the text, 80/10/10", () => {
  const corpus = syntheticText({ count: 400 });
  const source = documentBlocks(corpus, bytes);
  // Sequences of 160 tokens: most documents fit with room to spare, some are cut.
  const [T, P] = [160, 24];
  const writer = new TokenWriter(source, views({ ratio: 0.15, mode: "dynamic" }, false, T), 1);
  assert.equal(writer.predictions, P); // ⌈0.15 · 158⌉
  const clean = new TokenWriter(source, views(null, false, T), 1);
  const batch = writer.allocate(400), plain = clean.allocate(400);
  const indices = Array.from({ length: 400 }, (_, i) => i);
  writer.write(indices, 0, batch);
  clean.write(indices, 0, plain);
  for (const k of [0, 2]) {
    const text = bytes.encode(corpus.sentences(k).join(" ") + " ").subarray(0, T - 2);
    const expected = [257, ...text, 258, ...new Array(T - 2 - text.length).fill(256)];
    assert.deepEqual(Array.from(plain.tokens.subarray(k * T, (k + 1) * T)), expected);
  }
  let masked = 0, kept = 0, replaced = 0, chosen = 0;
  for (let k = 0; k < 400; k++) {
    const tokens = batch.tokens.subarray(k * T, (k + 1) * T);
    const original = plain.tokens.subarray(k * T, (k + 1) * T);
    const positions = Array.from(batch.positions.subarray(k * P, (k + 1) * P));
    const targets = Array.from(batch.targets.subarray(k * P, (k + 1) * P));
    assert.equal(new Set(positions).size, P, "distinct slots");
    const text = original.filter((t) => t < 256).length;
    const count = targets.filter((t) => t >= 0).length;
    assert.equal(count, Math.min(P, Math.max(1, Math.round(0.15 * text))), `sequence ${k}`);
    positions.forEach((j, s) => {
      if (targets[s] < 0) {
        assert.equal(tokens[j], original[j], "an unused slot's token is untouched");
        return;
      }
      chosen++;
      assert.ok(original[j] < 256, "never a special token");
      assert.equal(targets[s], original[j]);
      if (tokens[j] === 259) masked++;
      else if (tokens[j] === original[j]) kept++;
      else replaced++;
    });
    // Nothing outside the chosen positions changes.
    for (let j = 0; j < T; j++) {
      if (!positions.includes(j)) assert.equal(tokens[j], original[j]);
    }
  }
  assert.ok(Math.abs(masked / chosen - 0.8) < 0.03, `[MASK] ${masked / chosen}`);
  // A random replacement may draw the token itself (1 in 256).
  assert.ok(Math.abs(kept / chosen - 0.1) < 0.02, `kept ${kept / chosen}`);
  assert.ok(Math.abs(replaced / chosen - 0.1) < 0.02, `replaced ${replaced / chosen}`);
});

Deno.test("static masking keeps each sequence's mask across epochs; dynamic draws a new one", () => {
  const source = documentBlocks(syntheticText({ count: 20 }), bytes);
  const masks = (mode: "static" | "dynamic", epoch: number) => {
    const writer = new TokenWriter(source, views({ ratio: 0.15, mode }, false, 48), 5);
    const batch = writer.allocate(3);
    writer.write([4, 9, 2], epoch, batch);
    return [Array.from(batch.tokens), Array.from(batch.positions)];
  };
  assert.deepEqual(masks("static", 0), masks("static", 3));
  assert.deepEqual(masks("static", 0), masks("dynamic", 0));
  assert.notDeepEqual(masks("dynamic", 0), masks("dynamic", 1));
  // A sequence's mask does not depend on its batch.
  const writer = new TokenWriter(source, views({ ratio: 0.15, mode: "dynamic" }, false, 48), 5);
  const alone = writer.allocate(1);
  writer.write([9], 2, alone);
  const together = writer.allocate(3);
  writer.write([4, 9, 2], 2, together);
  assert.deepEqual(Array.from(alone.tokens), Array.from(together.tokens.subarray(48, 96)));
});

Deno.test("next-sentence pairs: [CLS] A [SEP] B [SEP], B the continuation half the time", () => {
  const corpus = counting(Array.from({ length: 40 }, () => 5));
  const source = packCorpus(corpus, bytes, views(null, true, 24));
  const writer = new TokenWriter(source, views(null, true, 24), 2);
  const n = source.blocks.length;
  const batch = writer.allocate(n);
  writer.write(Array.from({ length: n }, (_, i) => i), 0, batch);
  const starts = new Set(source.blocks.map((block) => bytes.decode(Array.from(block[0])).trim()));
  let next = 0;
  let midBlock = 0;
  for (let k = 0; k < n; k++) {
    const tokens = Array.from(batch.tokens.subarray(k * 24, (k + 1) * 24));
    const segments = Array.from(batch.segments.subarray(k * 24, (k + 1) * 24));
    const seps = tokens.flatMap((t, j) => (t === 258 ? [j] : []));
    assert.equal(tokens[0], 257);
    assert.equal(seps.length, 2, bytes.decode(tokens));
    assert.deepEqual(segments, tokens.map((_, j) => (j > seps[0] && j <= seps[1] ? 1 : 0)));
    assert.ok(tokens.slice(seps[1] + 1).every((t) => t === 256));
    const a = bytes.decode(tokens.slice(1, seps[0]));
    const b = bytes.decode(tokens.slice(seps[0] + 1, seps[1]));
    // A keeps its first sentences (cut only at its end, when too long): B continues it or
    // is from elsewhere.
    const first = Number(/^s(\d+)\./.exec(a)![1]);
    const count = a.split(". ").length - (a.endsWith(". ") ? 1 : 0);
    const followed = b.startsWith(`s${first + count}.`);
    assert.equal(followed, batch.isNext[k] === 1, `${a} | ${b}`);
    next += batch.isNext[k];
    if (!followed && !starts.has(b.split(" ")[0])) midBlock++;
  }
  assert.ok(next > 0.35 * n && next < 0.65 * n, `${next} of ${n} continue`);
  // As BERT's random_start: an unrelated B starts anywhere in its block, not only at its start.
  assert.ok(midBlock > 0, "every unrelated B starts its block");
});

Deno.test("the token loader shuffles as the image loader, drops the last partial batch and resumes mid-epoch", async () => {
  const source = documentBlocks(syntheticText({ count: 50 }), bytes);
  const options = {
    batchSize: 8,
    seed: 1,
    views: views({ ratio: 0.15, mode: "dynamic" as const }),
  };
  const loader = new TokenLoader(source, options);
  assert.equal(loader.batchesPerEpoch, 6);
  const copies = async (epoch: number, first = 0) => {
    const out = [];
    for await (const batch of loader.epoch(epoch, first)) {
      out.push([batch.step, Array.from(batch.indices), Array.from(batch.text!.tokens)]);
      assert.deepEqual(Array.from(batch.labels), Array.from(batch.indices, (i) => i % 5));
    }
    return out;
  };
  const whole = await copies(1);
  assert.equal(whole.length, 6);
  assert.deepEqual(await copies(1, 4), whole.slice(4));
  assert.equal(new Set(whole.flatMap(([, indices]) => indices as number[])).size, 48);
  assert.notDeepEqual(await copies(2), whole);
  assert.throws(() => new TokenLoader(source, { ...options, batchSize: 51 }), SelfsupError);
});
