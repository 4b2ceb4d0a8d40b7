// The pool page: GET /v1/relay/pool every POLL_MS while the page is shown.
import { getJson } from "./api.js";
import { $, el, fill, num, seconds } from "./dom.js";
import { linePlot } from "./plot.js";

const POLL_MS = 2000;
const WINDOW_S = 300;
let timer = null;

function breakerCell(state) {
  return el("td", { class: `breaker ${state}`, dataset: { state } }, state.replace("_", "-"));
}

function limitText(lv, now) {
  const avail = Math.max(0, lv.available);
  if (lv.rate_per_s !== null) {
    // rpm / tpm: a paced bucket, refilled at rate_per_s (docs/limits.md, strict pacing)
    const pace = `${lv.limit} ${num(lv.rate_per_s * 60)}/min`;
    if (lv.capacity <= 1) {
      return avail >= 1 ? `${pace} · ready` : `${pace} · next in ${seconds((1 - avail) / lv.rate_per_s)}`;
    }
    const wait = lv.resets_at - now;
    const full = wait > 0.05 ? ` · full in ${seconds(wait)}` : "";
    return `${pace} · ${num(avail)}/${num(lv.capacity)} now${full}`;
  }
  if (lv.resets_at !== null) {
    return `${lv.limit} ${num(avail)}/${num(lv.capacity)} left · resets in ${seconds(lv.resets_at - now)}`;
  }
  return `${lv.limit} ${num(avail)}/${num(lv.capacity)} free`;
}

function limitsCell(limits, now) {
  return el("td", { class: "limits" }, limits.map((lv) => el("div", {}, limitText(lv, now))));
}

function latency(recent) {
  const l = recent.latency_s;
  const show = (v) => (v === null ? "-" : `≤${seconds(v)}`);
  return `${show(l.p50)} / ${show(l.p95)} / ${show(l.p99)}`;
}

function plot(recent, binS) {
  const rate = (key) => recent.bins.map((b) => [b.start, b[key] / binS]);
  return linePlot(
    [
      { points: rate("requests"), cls: "req" },
      { points: rate("rate_limited"), cls: "limited" },
    ],
    { title: `${recent.requests} calls, ${recent.rate_limited} 429s` },
  );
}

function providerRows(p, view) {
  const r = p.recent;
  const errors = r.requests ? `${(100 * r.error_rate).toFixed(1)} % (${r.errors})` : "-";
  const head = el(
    "tr",
    { class: "provider", dataset: { provider: p.name } },
    el("th", { scope: "row" }, p.name),
    breakerCell(p.breaker),
    limitsCell(p.limits, view.at),
    el("td", { class: "queued" }, String(p.queue_depth)),
    el("td", { class: "in-flight" }, String(p.in_flight)),
    el("td", {}, latency(r)),
    el("td", { class: "errors" }, errors),
    el("td", { class: "calls", dataset: { requests: r.requests, limited: r.rate_limited } }, plot(r, view.bin_s)),
  );
  const models = p.models.map((m) =>
    el(
      "tr",
      { class: "model", dataset: { model: `${p.name}/${m.id}` } },
      el("td", { class: "model-name" }, m.id),
      breakerCell(m.breaker),
      limitsCell(m.limits, view.at),
      el("td", { colspan: 5 }),
    ),
  );
  return [head, ...models];
}

function workerRow(w, now) {
  return el(
    "tr",
    { dataset: { worker: w.name } },
    el("td", {}, w.name),
    el("td", {}, String(w.pid)),
    el("td", {}, w.providers.join(", ")),
    el("td", {}, String(w.in_flight)),
    el("td", {}, `${Math.max(0, now - w.at).toFixed(0)} s ago`),
  );
}

export function render(view) {
  $("#pool-at").textContent = `at ${new Date(view.at * 1000).toLocaleTimeString()}`;
  $("#pool-window").textContent = seconds(view.window_s);
  fill($("#pool-table tbody"), view.providers.flatMap((p) => providerRows(p, view)));
  const workers = view.workers.map((w) => workerRow(w, view.at));
  if (!workers.length) workers.push(el("tr", {}, el("td", { colspan: 5 }, "No live worker.")));
  fill($("#workers-table tbody"), workers);
}

async function refresh() {
  try {
    render(await getJson(`/v1/relay/pool?window_s=${WINDOW_S}`));
    $("#pool-error").textContent = "";
  } catch (err) {
    $("#pool-error").textContent = `Could not read the pool: ${err.message}`;
  }
}

export function start() {
  stop();
  refresh();
  timer = setInterval(refresh, POLL_MS);
}

export function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}
