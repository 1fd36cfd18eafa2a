/** What a run's plot shows. */
export interface PlotData {
  readonly title: string;
  /** Training loss by step. */
  readonly loss: readonly (readonly [step: number, loss: number])[];
  /**
   * The collapse monitor by step: the spread of the L2-normalised embeddings (about 1/√D
   * when healthy, 0 when collapsed).
   */
  readonly spread?: readonly (readonly [step: number, spread: number])[];
  /** Accuracies in [0, 1], e.g. probe and kNN of the run and of a random network. */
  readonly accuracies: readonly { readonly label: string; readonly value: number }[];
}

const panelWidth = 420;
const height = 360;
const pad = 48;

/**
 * A self-contained SVG of the loss curve, the embedding spread and a bar chart of
 * accuracies, side by side, which any browser opens: no plotting library, no fonts to fetch.
 * A panel with nothing to show is left out (no accuracies without evaluation).
 */
export function renderPlot(data: PlotData): string {
  const finite = (points: PlotData["loss"]) => points.filter(([, v]) => Number.isFinite(v));
  const loss = finite(data.loss);
  const spread = finite(data.spread ?? []);
  const drawers: ((x: number, y: number, w: number, h: number) => string[])[] = [];
  if (loss.length) drawers.push((...at) => curvePanel("training loss", "#1f77b4", loss, ...at));
  if (spread.length) {
    drawers.push((...at) => curvePanel("embedding spread", "#ff7f0e", spread, ...at));
  }
  if (data.accuracies.length) drawers.push((...at) => accuracyPanel(data.accuracies, ...at));
  const width = Math.max(1, drawers.length) * panelWidth;
  const w = (width - pad * (drawers.length + 1)) / Math.max(1, drawers.length);
  const panelHeight = height - 40 - pad;
  const panels = drawers.flatMap((draw, i) => draw(pad + i * (w + pad), 40, w, panelHeight));
  if (!panels.length) {
    panels.push(`<text x="${pad}" y="${height / 2}">no loss or accuracy recorded yet</text>`);
  }
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad}" y="22" font-size="15">${escape(data.title)}</text>`,
    ...panels,
    `</svg>`,
  ];
  return parts.join("\n") + "\n";
}

/** A curve of finite `points` by step, at least one; a single point shows as a dot. */
function curvePanel(
  title: string,
  color: string,
  finite: PlotData["loss"],
  x: number,
  y: number,
  w: number,
  h: number,
): string[] {
  const out = [`<text x="${x}" y="${y - 4}">${title}</text>`, frame(x, y, w, h)];
  const steps = finite.map(([s]) => s);
  const losses = finite.map(([, l]) => l);
  const [s0, s1] = [Math.min(...steps), Math.max(...steps)];
  const [l0, l1] = [Math.min(...losses), Math.max(...losses)];
  const sx = (s: number) => x + (s1 > s0 ? ((s - s0) / (s1 - s0)) * w : w / 2);
  const sy = (l: number) => y + h - (l1 > l0 ? ((l - l0) / (l1 - l0)) * h : h / 2);
  const path = finite.map(([s, l], i) => `${i ? "L" : "M"}${sx(s).toFixed(1)},${sy(l).toFixed(1)}`);
  out.push(`<path d="${path.join(" ")}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
  if (finite.length === 1) {
    const [[s, l]] = finite;
    out.push(`<circle cx="${sx(s).toFixed(1)}" cy="${sy(l).toFixed(1)}" r="3" fill="${color}"/>`);
  }
  out.push(`<text x="${x - 4}" y="${y + 10}" text-anchor="end">${label(l1)}</text>`);
  out.push(`<text x="${x - 4}" y="${y + h}" text-anchor="end">${label(l0)}</text>`);
  out.push(`<text x="${x}" y="${y + h + 16}">step ${s0}</text>`);
  out.push(`<text x="${x + w}" y="${y + h + 16}" text-anchor="end">step ${s1}</text>`);
  return out;
}

function accuracyPanel(
  bars: PlotData["accuracies"],
  x: number,
  y: number,
  w: number,
  h: number,
): string[] {
  const out = [`<text x="${x}" y="${y - 4}">top-1 accuracy</text>`, frame(x, y, w, h)];
  const slot = w / Math.max(1, bars.length);
  bars.forEach(({ label, value }, i) => {
    const barHeight = Math.max(0, Math.min(1, value)) * h;
    const bx = x + i * slot + slot * 0.15;
    out.push(
      `<rect x="${bx.toFixed(1)}" y="${(y + h - barHeight).toFixed(1)}" width="${
        (slot * 0.7).toFixed(1)
      }" ` +
        `height="${barHeight.toFixed(1)}" fill="${
          label.includes("random") ? "#bbbbbb" : "#2ca02c"
        }"/>`,
      `<text x="${(bx + slot * 0.35).toFixed(1)}" y="${(y + h - barHeight - 4).toFixed(1)}" ` +
        `text-anchor="middle">${(100 * value).toFixed(1)}%</text>`,
      // Two lines under the bar: "kNN, random init" becomes "kNN" over "random init".
      ...label.split(", ").map((line, k) =>
        `<text x="${(bx + slot * 0.35).toFixed(1)}" y="${y + h + 16 + 14 * k}" ` +
        `text-anchor="middle" font-size="11">${escape(line)}</text>`
      ),
    );
  });
  return out;
}

/** An axis label: two decimals, or two significant digits for small values. */
function label(value: number): string {
  return Math.abs(value) >= 0.1 || value === 0 ? value.toFixed(2) : value.toPrecision(2);
}

function frame(x: number, y: number, w: number, h: number): string {
  return `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="#999"/>`;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
