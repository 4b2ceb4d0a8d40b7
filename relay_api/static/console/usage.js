// The usage page: GET /v1/usage (the key's own counters per day, provider and model).
import { getJson } from "./api.js";
import { $, el, fill, num } from "./dom.js";

const COLUMNS = ["requests", "prompt_tokens", "completion_tokens", "errors", "rate_limited"];

function row(cells, attrs) {
  return el("tr", attrs, cells.map((c) => el("td", {}, c)));
}

export function render(report) {
  const rows = report.data.map((r) =>
    row([r.date, r.provider, r.model, ...COLUMNS.map((c) => num(r[c]))], { dataset: { provider: r.provider } }),
  );
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 8 }, "No usage yet.")));
  else rows.push(row(["total", "", "", ...COLUMNS.map((c) => num(report.totals[c]))], { class: "total" }));
  fill($("#usage-table tbody"), rows);
}

export async function start() {
  try {
    render(await getJson("/v1/usage"));
    $("#usage-error").textContent = "";
  } catch (err) {
    $("#usage-error").textContent = `Could not read the usage: ${err.message}`;
  }
}

export function stop() {}
