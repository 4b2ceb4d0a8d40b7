// Tiny DOM helpers: text goes in as text (never as HTML), so nothing the API says can run.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function $(selector) {
  return document.querySelector(selector);
}

export function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

export function seconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "-";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function num(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e5) return `${Math.round(n / 1e3)}k`;
  if (n >= 1e3) return Math.round(n).toLocaleString("en-US");
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function when(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "-";
}
