/** What a run's plot shows. */
export interface PlotData {
  readonly title: string;
  /** Training loss by step. */
  readonly loss: readonly (readonly [step: number, loss: number])[];
  /** Accuracies in [0, 1], e.g. probe and kNN of the run and of a random network. */
  readonly accuracies: readonly { readonly label: string; readonly value: number }[];
}

const width = 880;
const height = 360;
const pad = 48;

/**
 * A self-contained SVG of the loss curve and a bar chart of accuracies, which any browser
 * opens: no plotting library, no fonts to fetch. A panel with nothing to show is left out
 * (no accuracies without evaluation) and the other takes the width.
 */
export function renderPlot(data: PlotData): string {
  const finite = data.loss.filter(([, l]) => Number.isFinite(l));
  const panelHeight = height - 40 - pad;
  const panels: string[] = [];
  const lossRight = data.accuracies.length ? 520 : width - pad;
  if (finite.length) panels.push(...lossPanel(finite, pad, 40, lossRight - pad, panelHeight));
  if (data.accuracies.length) {
    const left = finite.length ? lossRight + pad : pad;
    panels.push(...accuracyPanel(data.accuracies, left, 40, width - pad - left, panelHeight));
  }
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

/** The loss curve of finite `points`, at least one; a single point shows as a dot. */
function lossPanel(finite: PlotData["loss"], x: number, y: number, w: number, h: number): string[] {
  const out = [`<text x="${x}" y="${y - 4}">training loss</text>`, frame(x, y, w, h)];
  const steps = finite.map(([s]) => s);
  const losses = finite.map(([, l]) => l);
  const [s0, s1] = [Math.min(...steps), Math.max(...steps)];
  const [l0, l1] = [Math.min(...losses), Math.max(...losses)];
  const sx = (s: number) => x + (s1 > s0 ? ((s - s0) / (s1 - s0)) * w : w / 2);
  const sy = (l: number) => y + h - (l1 > l0 ? ((l - l0) / (l1 - l0)) * h : h / 2);
  const path = finite.map(([s, l], i) => `${i ? "L" : "M"}${sx(s).toFixed(1)},${sy(l).toFixed(1)}`);
  out.push(`<path d="${path.join(" ")}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`);
  if (finite.length === 1) {
    const [[s, l]] = finite;
    out.push(`<circle cx="${sx(s).toFixed(1)}" cy="${sy(l).toFixed(1)}" r="3" fill="#1f77b4"/>`);
  }
  out.push(`<text x="${x - 4}" y="${y + 10}" text-anchor="end">${l1.toFixed(2)}</text>`);
  out.push(`<text x="${x - 4}" y="${y + h}" text-anchor="end">${l0.toFixed(2)}</text>`);
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

function frame(x: number, y: number, w: number, h: number): string {
  return `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="#999"/>`;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
