// The console: log in (when the API asks for a key), then one page at a time (#pool, ...).
import { ApiError, call, key, setKey } from "./api.js";
import * as batches from "./batches.js";
import { $ } from "./dom.js";
import * as playground from "./playground.js";
import * as pool from "./pool.js";
import * as usage from "./usage.js";

const PAGES = { pool, batches, playground, usage };
let current = null;

function show(name) {
  const page = PAGES[name] ? name : "pool";
  if (current && current !== page) PAGES[current].stop();
  for (const [n] of Object.entries(PAGES)) $(`#page-${n}`).hidden = n !== page;
  for (const a of document.querySelectorAll("#tabs a[data-tab]")) {
    a.classList.toggle("active", a.dataset.tab === page);
  }
  current = page;
  PAGES[page].start();
}

// Does the API let this tab in? (401: a key is needed, or the one kept is wrong.)
async function admitted() {
  try {
    await call("GET", "/v1/relay/pool?window_s=30");
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    throw err;
  }
}

function loggedIn() {
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  $("#logout").hidden = !key();
  $("#who").textContent = key() ? "logged in with a gateway key" : "open: no gateway keys configured";
  show(location.hash.slice(1));
}

function loggedOut(message) {
  if (current) PAGES[current].stop();
  current = null;
  for (const n of Object.keys(PAGES)) $(`#page-${n}`).hidden = true;
  $("#tabs").hidden = true;
  $("#logout").hidden = true;
  $("#who").textContent = "";
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#login-key").value = "";
  $("#login-key").focus();
}

async function boot() {
  for (const page of Object.values(PAGES)) if (page.setup) page.setup();
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setKey($("#login-key").value.trim());
    if (await admitted()) loggedIn();
    else {
      setKey(null);
      loggedOut("That key was refused.");
    }
  });
  $("#logout").addEventListener("click", () => {
    setKey(null);
    loggedOut();
  });
  window.addEventListener("hashchange", () => {
    if (current) show(location.hash.slice(1));
  });
  if (await admitted()) loggedIn();
  else {
    const had = key();
    setKey(null);
    loggedOut(had ? "Your key was refused: log in again." : "");
  }
}

boot();
