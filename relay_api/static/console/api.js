// The API, called with the gateway key of this tab (sessionStorage: never in a URL or a log).
const KEY = "relay.gatewayKey";

export function key() {
  return sessionStorage.getItem(KEY);
}

export function setKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message, type) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const k = key();
  if (k) h.set("Authorization", `Bearer ${k}`);
  return h;
}

async function failure(reply) {
  let message = `${reply.status} ${reply.statusText}`;
  let type = "";
  try {
    const body = await reply.json();
    if (body && body.error) {
      message = body.error.message || message;
      type = body.error.type || "";
    }
  } catch (_) {
    // not JSON: the status line says it
  }
  return new ApiError(reply.status, message, type);
}

// fetch() with the key; a reply that is not 2xx becomes an ApiError with the API's message.
export async function call(method, path, { json, form, headers: extra, signal } = {}) {
  const init = { method, headers: headers(extra), signal };
  if (json !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const reply = await fetch(path, init);
  if (!reply.ok) throw await failure(reply);
  return reply;
}

export async function getJson(path) {
  return (await call("GET", path)).json();
}

export async function postJson(path, json) {
  return (await call("POST", path, { json })).json();
}

// Save a reply's body as a file (a blob: URL, so the key is never part of a link).
export async function download(path, filename) {
  const blob = await (await call("GET", path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return blob;
}
