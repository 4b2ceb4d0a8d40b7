// The playground: one chat request, its answer, who served it, and the candidates routing had.
import { call, getJson } from "./api.js";
import { $, el, fill, seconds } from "./dom.js";

const SERVED = [
  ["x-relay-provider", "provider"],
  ["x-relay-model", "model"],
  ["x-relay-attempts", "attempts"],
  ["x-relay-queue-ms", "queue wait (ms)"],
  ["x-relay-upstream-ms", "upstream (ms; first byte when streamed)"],
  ["x-relay-usage", "usage"],
  ["x-request-id", "request id"],
];

let models = [];

function body() {
  const b = {
    model: $("#chat-model").value.trim() || "meta-model",
    messages: [{ role: "user", content: $("#chat-prompt").value }],
    stream: $("#chat-stream").checked,
  };
  for (const [field, id] of [["model_type", "#chat-type"], ["model_scale", "#chat-scale"], ["model_name", "#chat-name"]]) {
    const v = $(id).value.trim();
    if (v) b[field] = v;
  }
  return b;
}

function served(reply, extra) {
  const rows = SERVED.filter(([h]) => reply.headers.get(h)).map(([h, label]) =>
    el("tr", { dataset: { header: h } }, el("th", {}, label), el("td", {}, reply.headers.get(h))),
  );
  for (const [label, value] of extra) rows.push(el("tr", {}, el("th", {}, label), el("td", {}, value)));
  fill($("#chat-served tbody"), rows);
}

function candidates(model) {
  const matching = models.filter(
    (m) => m.status && (model === "meta-model" || model === "auto" || [m.id, m.root, ...(m.aliases || [])].includes(model)),
  );
  fill(
    $("#chat-candidates tbody"),
    matching.map((m) =>
      el(
        "tr",
        {},
        el("td", {}, m.id),
        el("td", { class: `breaker ${m.status.breaker}` }, m.status.breaker),
        el("td", {}, seconds(m.status.available_in_s)),
        el("td", {}, `${Math.round(100 * m.status.headroom)} %`),
      ),
    ),
  );
}

async function readStream(reply, out) {
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
        if (chunk.usage) usage = chunk.usage;
        for (const choice of chunk.choices || []) {
          if (choice.delta && choice.delta.content) out.textContent += choice.delta.content;
        }
      }
    }
  }
  return usage;
}

async function send(event) {
  event.preventDefault();
  $("#chat-error").textContent = "";
  const b = body();
  const headers = $("#chat-fallback").checked ? { "X-Relay-Fallback": "any" } : {};
  const out = $("#chat-answer");
  out.textContent = "";
  $("#chat-send").disabled = true;
  const started = performance.now();
  try {
    const reply = await call("POST", "/v1/chat/completions", { json: b, headers });
    $("#chat-result").hidden = false;
    let usage;
    if (b.stream) {
      served(reply, []);
      usage = await readStream(reply, out);
    } else {
      const completion = await reply.json();
      out.textContent = completion.choices.map((c) => c.message.content || "").join("\n---\n");
      usage = completion.usage;
    }
    const extra = [["total time", seconds((performance.now() - started) / 1000)]];
    if (usage) extra.push(["tokens (prompt + completion)", `${usage.prompt_tokens} + ${usage.completion_tokens}`]);
    served(reply, extra);
    candidates(b.model);
  } catch (err) {
    $("#chat-error").textContent = err.message;
  } finally {
    $("#chat-send").disabled = false;
  }
}

async function loadModels() {
  try {
    models = (await getJson("/v1/models")).data;
    const names = new Set(models.flatMap((m) => [m.id, ...(m.aliases || [])]));
    fill($("#chat-models"), [...names].sort().map((n) => el("option", { value: n })));
  } catch (_) {
    models = [];
  }
}

export function setup() {
  $("#chat-form").addEventListener("submit", send);
}

export function start() {
  loadModels();
}

export function stop() {}
