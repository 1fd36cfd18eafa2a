/**
 * A built-in, deterministic corpus for masked language modelling: documents of three or four
 * sentences from a small grammar, each about one or two named things of one of five topics
 * (the document's label). What a document says of its subject — the name, its kind, colour,
 * dish, instrument, team or city — is drawn at random and repeated in later sentences, so a
 * hidden word there can only be told from the context, and verbs and pronouns agree with a
 * singular or plural subject.
 *
 * @module
 */
import type { Split } from "./dataset.ts";
import { Random } from "./random.ts";
import { ListTextDataset } from "./text.ts";

/** The topics, by label. */
export const SYNTHETIC_TOPICS: readonly string[] = ["animals", "food", "music", "sports", "travel"];

const NAMES = [
  "Ada",
  "Bram",
  "Cleo",
  "Dov",
  "Elin",
  "Faro",
  "Gus",
  "Hana",
  "Ivo",
  "Juno",
  "Kai",
  "Lena",
  "Milo",
  "Nia",
  "Otto",
  "Pia",
  "Quin",
  "Rosa",
  "Sami",
  "Tove",
  "Uma",
  "Vik",
  "Wren",
  "Yara",
];
const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/** The forms of a subject of one or two names: verbs take "s" only in the singular. */
interface Subject {
  readonly text: string;
  readonly plural: boolean;
  /** "They", or the name again (a pronoun of one would need a gender). */
  readonly pronoun: string;
  readonly possessive: string;
}

/** A verb agreeing with the subject: "eats" / "eat", "is" / "are". */
function verb(subject: Subject, base: string): string {
  if (base === "be") return subject.plural ? "are" : "is";
  if (subject.plural) return base;
  return /(s|sh|ch|x)$/.test(base) ? `${base}es` : `${base}s`;
}

/** A sentence's first word inside a sentence: "They" lower-cased, a name as it is. */
function inSentence(word: string): string {
  return word === "They" ? "they" : word;
}

type Pick = <T>(list: readonly T[]) => T;

/** The sentences of one document of each topic, from the subject and a draw. */
const TOPICS: readonly ((s: Subject, pick: Pick) => string[])[] = [
  (s, pick) => {
    const kind = pick(["cat", "dog", "fox", "owl", "horse", "rabbit", "goat", "duck"]);
    const colour = pick(["red", "grey", "black", "white", "brown", "golden"]);
    const place = pick(["forest", "river", "farm", "garden", "hill", "meadow"]);
    const food = pick(["fish", "seeds", "grass", "berries", "apples", "corn"]);
    const kinds = s.plural ? `${kind}s` : kind;
    return [
      `${s.text} ${verb(s, "be")} ${s.plural ? "" : "a "}${colour} ${kinds}.`,
      `${s.text} ${verb(s, "live")} near the ${place}.`,
      `${s.pronoun} ${verb(s, "eat")} ${food} every day.`,
      `${s.possessive} ${s.plural ? "coats" : "coat"} ${verb(s, "be")} ${colour}, and the ` +
      `${kinds} ${verb(s, "sleep")} by the ${place}.`,
    ];
  },
  (s, pick) => {
    const dish = pick(["bread", "soup", "cake", "pie", "rice", "salad", "pasta", "stew"]);
    const extra = pick(["onions", "cheese", "honey", "lemons", "beans", "pepper", "butter"]);
    const taste = pick(["sweet", "salty", "spicy", "sour", "rich", "fresh"]);
    const day = pick(DAYS);
    return [
      `${s.text} ${verb(s, "bake")} ${dish} with ${extra}.`,
      `The ${dish} tastes ${taste}.`,
      `Every ${day} ${s.text} ${verb(s, "cook")} ${dish} again.`,
      `${s.pronoun} ${verb(s, "sell")} the ${taste} ${dish} at the market on ${day}.`,
    ];
  },
  (s, pick) => {
    const instrument = pick(["guitar", "piano", "violin", "drum", "flute", "trumpet", "cello"]);
    const genre = pick(["jazz", "rock", "folk", "blues", "pop", "soul"]);
    const hall = pick(["club", "church", "park", "theatre", "school", "studio"]);
    const day = pick(DAYS);
    return [
      `${s.text} ${verb(s, "play")} the ${instrument} in a ${genre} band.`,
      `${s.pronoun} ${verb(s, "practise")} the ${instrument} every ${day}.`,
      `The band plays ${genre} songs at the ${hall}.`,
      `${s.possessive} ${instrument} sounds loud in the ${hall}.`,
    ];
  },
  (s, pick) => {
    const sport = pick(["football", "tennis", "hockey", "rugby", "golf", "cricket", "baseball"]);
    const team = pick(["Lions", "Tigers", "Eagles", "Sharks", "Wolves", "Bears"]);
    const goals = pick(["two", "three", "four", "five", "six", "seven"]);
    const day = pick(DAYS);
    return [
      `${s.text} ${verb(s, "play")} ${sport} for the ${team}.`,
      `The ${team} win the match on ${day}.`,
      `${s.pronoun} ${verb(s, "score")} ${goals} goals for the ${team}.`,
      `${s.possessive} coach loves ${sport}.`,
    ];
  },
  (s, pick) => {
    const city = pick(["Paris", "Rome", "Lima", "Oslo", "Cairo", "Tokyo", "Delhi", "Quito"]);
    const vehicle = pick(["train", "bus", "ship", "plane", "bike", "car"]);
    const sight = pick(["market", "museum", "harbour", "castle", "bridge", "tower"]);
    return [
      `${s.text} ${verb(s, "travel")} to ${city} by ${vehicle}.`,
      `The ${vehicle} to ${city} leaves at noon.`,
      `In ${city} ${inSentence(s.pronoun)} ${verb(s, "visit")} the old ${sight}.`,
      `${s.possessive} trip to ${city} is long, but the ${sight} is worth it.`,
    ];
  },
];

/** Options of {@linkcode syntheticText}. */
export interface SyntheticTextOptions {
  /** "train" (default) or "test"; the splits draw from different streams of the seed. */
  split?: Split;
  /** Number of documents (default 5,000 for train, 1,000 for test); topics alternate. */
  count?: number;
  seed?: number;
}

/**
 * Generates the synthetic corpus: document i has topic i mod 5, a subject of one name or
 * (half the time) two, and three or four of its topic's sentences in order, the first
 * always. Deterministic for a seed, split and count.
 *
 * @example
 * ```ts
 * import { syntheticText } from "./synthetic_text.ts";
 * const corpus = syntheticText({ count: 10 });
 * corpus.classNames[corpus.label(2)]; // "music"
 * ```
 */
export function syntheticText(options: SyntheticTextOptions = {}): ListTextDataset {
  const split = options.split ?? "train";
  const count = options.count ?? (split === "train" ? 5000 : 1000);
  const seed = options.seed ?? 0;
  const random = new Random(0);
  const pick: Pick = (list) => list[random.int(list.length)];
  const documents: string[][] = [];
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const topic = i % SYNTHETIC_TOPICS.length;
    labels[i] = topic;
    random.reseed(seed, split === "train" ? 0x7e471 : 0x7e472, i);
    const first = pick(NAMES);
    let second = pick(NAMES);
    while (second === first) second = pick(NAMES);
    const plural = random.float() < 0.5;
    const subject: Subject = plural
      ? { text: `${first} and ${second}`, plural, pronoun: "They", possessive: "Their" }
      : { text: first, plural, pronoun: first, possessive: `${first}'s` };
    const [intro, ...rest] = TOPICS[topic](subject, pick);
    // Keep the introduction, drop one of the others at random a third of the time.
    if (random.float() < 1 / 3) rest.splice(random.int(rest.length), 1);
    documents.push([intro, ...rest]);
  }
  return new ListTextDataset(documents, labels, SYNTHETIC_TOPICS);
}
