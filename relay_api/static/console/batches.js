// The batches page: upload a file, see the estimate, start, follow, cancel, retry, download.
import { call, download, getJson, postJson } from "./api.js";
import { $, el, fill, seconds, when } from "./dom.js";
import { linePlot } from "./plot.js";

const FOLLOW_MS = 1000;
const LIST_MS = 5000;
const RATE_SPAN_S = 5; // lines/s is measured over the last few seconds
const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);
const CANCELLABLE = new Set(["validating", "in_progress"]);

let pending = null; // {file, estimate, model}: uploaded, not started
let followed = null; // {id, samples: [[t, done]], rates: [[t, rate]], ceiling, inputFile, model}
let followTimer = null;
let listTimer = null;

function isJsonl(name) {
  return /\.(jsonl|ndjson|json)$/i.test(name);
}

function showError(err) {
  $("#batch-error").textContent = err ? err.message : "";
}

async function upload(file, model) {
  const form = new FormData();
  form.append("purpose", "batch");
  if (!isJsonl(file.name)) form.append("model", model);
  form.append("file", file, file.name);
  const path = isJsonl(file.name) ? "/v1/files" : "/v1/relay/files/prompts";
  return (await call("POST", path, { form })).json();
}

function estimatePath(fileId, model) {
  const q = model ? `?model=${encodeURIComponent(model)}` : "";
  return `/v1/relay/files/${encodeURIComponent(fileId)}/estimate${q}`;
}

function renderEstimate() {
  const box = $("#estimate");
  if (!pending) {
    box.hidden = true;
    return;
  }
  const { file, estimate: e } = pending;
  const backlog = e.backlog_lines
    ? ` (${seconds(e.estimated_seconds_with_backlog)} after your ${e.backlog_lines} lines already waiting)`
    : "";
  box.replaceChildren(
    el("h3", {}, `${file.filename}: ${e.lines} lines`),
    el(
      "p",
      { id: "estimate-text" },
      `Pooled ceiling ${e.rate_per_s.toFixed(2)} lines/s: about ${seconds(e.estimated_seconds)}${backlog}.`,
    ),
    el("ul", {}, e.warnings.map((w) => el("li", { class: "warning" }, w))),
    el("button", { id: "batch-start", type: "button", onclick: startBatch }, "Start batch"),
    el("button", { type: "button", onclick: () => ((pending = null), renderEstimate()) }, "Discard"),
  );
  box.hidden = false;
}

async function onSubmit(event) {
  event.preventDefault();
  showError(null);
  const file = $("#batch-file").files[0];
  if (!file) return;
  const model = $("#batch-model").value.trim();
  $("#batch-upload").disabled = true;
  try {
    const stored = await upload(file, model || "meta-model");
    const estimate = await postJson(estimatePath(stored.id, model), undefined);
    pending = { file: stored, estimate, model };
    renderEstimate();
  } catch (err) {
    showError(err);
  } finally {
    $("#batch-upload").disabled = false;
  }
}

async function startBatch() {
  showError(null);
  try {
    const body = {
      input_file_id: pending.file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    };
    if (pending.model) body.model = pending.model;
    const batch = await postJson("/v1/batches", body);
    const ceiling = pending.estimate.rate_per_s;
    pending = null;
    renderEstimate();
    follow(batch.id, ceiling);
    refreshList();
  } catch (err) {
    showError(err);
  }
}

function rateNow(samples) {
  const last = samples[samples.length - 1];
  const first = samples.find((s) => last[0] - s[0] <= RATE_SPAN_S) || last;
  return last[0] > first[0] ? (last[1] - first[1]) / (last[0] - first[0]) : 0;
}

function bar(done, total) {
  const share = total ? Math.min(100, (100 * done) / total) : 0;
  const fill = el("div", { class: "fill" });
  fill.style.width = `${share}%`;
  return el(
    "div",
    { class: "bar", id: "batch-bar", role: "progressbar", "aria-valuenow": Math.floor(share), "aria-valuemin": 0, "aria-valuemax": 100 },
    fill,
    el("span", { id: "batch-percent" }, `${Math.floor(share)} %`),
  );
}

function providersTable(providers) {
  const rows = Object.entries(providers).map(([name, p]) =>
    el("tr", {}, el("td", {}, name), el("td", {}, String(p.completed)), el("td", {}, String(p.failed))),
  );
  return el(
    "table",
    { class: "served" },
    el("thead", {}, el("tr", {}, el("th", {}, "provider"), el("th", {}, "done"), el("th", {}, "failed"))),
    el("tbody", {}, rows),
  );
}

function actions(p) {
  const id = p.id;
  const buttons = [];
  if (CANCELLABLE.has(p.status)) {
    buttons.push(el("button", { id: "batch-cancel", type: "button", onclick: () => act("cancel", id) }, "Cancel"));
  }
  if (TERMINAL.has(p.status) && p.request_counts.failed > 0) {
    buttons.push(el("button", { id: "batch-retry", type: "button", onclick: () => act("retry", id) }, "Retry failed lines"));
  }
  const partial = TERMINAL.has(p.status) ? "" : " so far";
  buttons.push(
    el("button", { id: "batch-download-output", type: "button", onclick: () => save(id, "output") }, `Download output${partial}`),
    el("button", { id: "batch-download-errors", type: "button", onclick: () => save(id, "errors") }, `Download errors${partial}`),
  );
  return el("p", { class: "actions" }, buttons);
}

function renderDetail(p, errors) {
  const rc = p.request_counts;
  const done = rc.completed + rc.failed;
  const rate = rateNow(followed.samples);
  const left = Math.max(0, rc.total - done);
  const pace = rate > 0 ? rate : followed.ceiling || 0;
  const eta = TERMINAL.has(p.status) ? "done" : pace > 0 ? seconds(left / pace) : "-";
  const ceiling = followed.ceiling ? ` (pooled ceiling ${followed.ceiling.toFixed(2)})` : "";
  const plot = linePlot([{ points: followed.rates, cls: "req" }], {
    width: 360,
    height: 60,
    ceiling: followed.ceiling,
    title: "lines/s against the pooled ceiling",
  });
  const parts = [
    el("h2", {}, "Batch ", el("code", { id: "batch-id" }, p.id), " ", el("span", { id: "batch-status", class: `status ${p.status}` }, p.status)),
    bar(done, rc.total),
    el(
      "p",
      { id: "batch-counts" },
      `${done} of ${rc.total} lines: ${rc.completed} done, ${rc.failed} failed, ${p.in_flight} in flight · ${rate.toFixed(2)} lines/s${ceiling} · ETA ${eta}`,
    ),
    plot,
    providersTable(p.providers),
    p.finalize_error ? el("p", { class: "error" }, `Output not written yet: ${p.finalize_error}`) : null,
    errors.length ? el("h3", {}, "Errors so far") : null,
    errors.length ? el("ul", { id: "batch-errors" }, errors.map((e) => el("li", {}, e))) : null,
    actions(p),
  ];
  $("#batch-detail").replaceChildren(...parts.filter(Boolean));
  $("#batch-detail").hidden = false;
}

async function errorsSoFar(id, failed) {
  if (!failed) return [];
  const text = await (await call("GET", `/v1/batches/${encodeURIComponent(id)}/results?which=errors`)).text();
  return text
    .split("\n")
    .filter((line) => line.trim())
    .slice(-10)
    .map((line) => {
      try {
        const row = JSON.parse(line);
        const err = row.error || (row.response && row.response.body && row.response.body.error) || {};
        return `${row.custom_id}: ${err.message || err.code || line}`;
      } catch (_) {
        return line;
      }
    });
}

async function tick() {
  if (!followed) return;
  const id = followed.id;
  try {
    const p = await getJson(`/v1/batches/${encodeURIComponent(id)}/progress`);
    if (!followed || followed.id !== id) return;
    const now = Date.now() / 1000;
    const done = p.request_counts.completed + p.request_counts.failed;
    followed.samples.push([now, done]);
    followed.samples = followed.samples.filter((s) => now - s[0] <= 600);
    followed.rates.push([now, rateNow(followed.samples)]);
    followed.rates = followed.rates.filter((s) => now - s[0] <= 600);
    renderDetail(p, await errorsSoFar(id, p.request_counts.failed));
    if (TERMINAL.has(p.status)) {
      stopFollowing();
      refreshList();
    }
  } catch (err) {
    showError(err);
  }
}

function stopFollowing() {
  if (followTimer) clearInterval(followTimer);
  followTimer = null;
}

async function follow(id, ceiling) {
  stopFollowing();
  followed = { id, samples: [], rates: [], ceiling: ceiling || null };
  if (!ceiling) {
    try {
      const batch = await getJson(`/v1/batches/${encodeURIComponent(id)}`);
      const e = await postJson(estimatePath(batch.input_file_id, batch.model), undefined);
      if (followed && followed.id === id) followed.ceiling = e.rate_per_s;
    } catch (_) {
      // the input file may be gone: follow without a ceiling
    }
  }
  await tick();
  if (followed && followed.id === id && !followTimer) followTimer = setInterval(tick, FOLLOW_MS);
}

async function act(what, id) {
  showError(null);
  try {
    const batch = await postJson(`/v1/batches/${encodeURIComponent(id)}/${what}`, undefined);
    follow(batch.id, what === "retry" ? null : followed && followed.ceiling);
    refreshList();
  } catch (err) {
    showError(err);
  }
}

async function save(id, which) {
  showError(null);
  try {
    await download(`/v1/batches/${encodeURIComponent(id)}/results?which=${which}`, `${id}-${which}.jsonl`);
  } catch (err) {
    showError(err);
  }
}

function listRow(b) {
  const rc = b.request_counts;
  return el(
    "tr",
    { dataset: { batch: b.id }, class: "clickable", onclick: () => follow(b.id) },
    el("td", {}, el("code", {}, b.id)),
    el("td", {}, b.status),
    el("td", {}, `${rc.completed + rc.failed}/${rc.total}`),
    el("td", {}, String(rc.failed)),
    el("td", {}, when(b.created_at)),
  );
}

async function refreshList() {
  try {
    const page = await getJson("/v1/batches?limit=20");
    const rows = page.data.map(listRow);
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5 }, "No batch yet.")));
    fill($("#batch-list tbody"), rows);
  } catch (err) {
    showError(err);
  }
}

export function setup() {
  $("#batch-form").addEventListener("submit", onSubmit);
}

export function start() {
  refreshList();
  if (!listTimer) listTimer = setInterval(refreshList, LIST_MS);
  if (followed && !followTimer) follow(followed.id, followed.ceiling);
}

export function stop() {
  if (listTimer) clearInterval(listTimer);
  listTimer = null;
  stopFollowing();
}
