// A small SVG line plot: series of [x, y] points sharing one y scale (no library).
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

// series: [{points: [[x, y], ...], cls: "req", label}], a flat `ceiling` line optional.
export function linePlot(series, { width = 220, height = 48, ceiling = null, title = "" } = {}) {
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "plot" });
  if (title) {
    const t = svg("title", {});
    t.textContent = title;
    root.append(t);
  }
  const all = series.flatMap((s) => s.points);
  if (!all.length) return root;
  const xs = all.map((p) => p[0]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const top = Math.max(1e-9, ceiling || 0, ...all.map((p) => p[1])) * 1.1;
  const X = (x) => ((x - x0) / (x1 - x0)) * (width - 2) + 1;
  const Y = (y) => height - 1 - (y / top) * (height - 2);
  root.append(svg("line", { x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5, class: "axis" }));
  if (ceiling) {
    root.append(svg("line", { x1: 0, x2: width, y1: Y(ceiling), y2: Y(ceiling), class: "ceiling" }));
  }
  for (const s of series) {
    const pts = s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points: pts, class: `line ${s.cls}` }));
  }
  const label = svg("text", { x: 2, y: 10, class: "scale" });
  label.textContent = `max ${(top / 1.1).toFixed(top < 11 ? 1 : 0)}/s`;
  root.append(label);
  return root;
}
