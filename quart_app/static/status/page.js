// The status page: GET ../status (the admin report) and GET history (the chart's samples), redrawn every 10 s.
// Every URL is relative, so the page works behind AppAPI's proxy as well as on the app's own port.
"use strict";

const REFRESH_MS = 10000;
const THROUGHPUT_COLOUR = "#0082c9";
const QUEUE_COLOUR = "#e6550d";
// relative to the page without its user:password@ (fetch refuses URLs with credentials; the session cookie does)
const PAGE_URL = location.origin + location.pathname;
let chart = null;
// when the figures on the page were fetched; null until the first refresh succeeds
let updatedAt = null;

function number(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  if (seconds === 0) return "done";
  return elapsed(seconds);
}

function elapsed(seconds) {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
}

function fillTable(id, rows, empty) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  if (!rows.length) rows = [[empty, "", ""]];
  for (const [first, second, third, className] of rows) {
    const row = body.insertRow();
    cell(row, first);
    cell(row, second, className);
    cell(row, third);
  }
}

function fillList(id, pairs) {
  const list = document.getElementById(id);
  list.replaceChildren();
  for (const [term, value] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
}

function flatten(prefix, value, out) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(prefix ? `${prefix} ${key}` : key, inner, out);
  } else {
    out.push([prefix, Array.isArray(value) ? value.join(", ") : String(value)]);
  }
  return out;
}

function clockTime(epochSeconds) {
  const at = new Date(epochSeconds * 1000);
  // an outage that began on another day names that day
  const sameDay = at.toDateString() === new Date().toDateString();
  return sameDay ? at.toLocaleTimeString("en-GB") : at.toLocaleString("en-GB");
}

function showAlert(id, text) {
  const banner = document.getElementById(id);
  banner.textContent = text || "";
  banner.hidden = !text;
}

function outageStart(since) {
  return `since ${clockTime(since)} (${elapsed(Math.max(0, Date.now() / 1000 - since))})`;
}

function renderEmbedder(embedder) {
  // while the embedding service is unavailable the embedding worker waits: indexing stalls until it answers again
  if (!embedder || embedder.state !== "unavailable") return showAlert("embedder-outage", null);
  const nextTry = embedder.next_try_in_s == null ? "" : `, next try in ${elapsed(embedder.next_try_in_s)}`;
  showAlert("embedder-outage", `Embedding service unavailable ${outageStart(embedder.unavailable_since)}:` +
    ` ${embedder.last_error}. Indexing waits and resumes by itself once it answers` +
    ` (${number(embedder.failed_calls)} failed calls${nextTry}).`);
}

function renderDatabase(database) {
  // while PostgreSQL is away the report has no figures: say since when, why, and what brings them back
  if (!database || database.state !== "unavailable") return showAlert("database-outage", null);
  showAlert("database-outage", `Database unavailable ${outageStart(database.unavailable_since)}:` +
    ` ${database.last_error}. Indexing and questions wait and resume by themselves once it is back: start it` +
    " (embedded: the postgres program below, `ccb logs postgres`) or check the server EXTERNAL_DB names.");
}

function renderReport(report) {
  renderDatabase(report.database);
  renderEmbedder(report.embedder);
  // a partial report (PostgreSQL down, the engine still opening) has none of the figures read from the database
  const documents = report.documents || {}, chunks = report.chunks || {}, queue = report.queue || {};
  const unread = report.documents === null;
  setText("documents-indexed", number(documents.indexed));
  setText("documents-failed", number(documents.failed));
  setText("chunks-embedded", number(chunks.embedded));
  setText("chunks-queued", number(chunks.queued));
  setText("chunks-failed", number(chunks.failed));
  setText("throughput-label", report.throughput ? `chunks/s (last ${report.throughput.window_s} s)` : "chunks/s");
  setText("throughput-chunks-per-s", number(report.throughput && report.throughput.chunks_per_s));
  setText("eta", duration(report.eta_s));
  setText("queue-depth", number(queue.depth));
  setText("queue-tokens", number(queue.tokens));
  setText("queue-due-now", number(queue.due_now));
  setText("queue-in-progress", number(queue.in_progress));

  const model = report.embedding_model || {};
  const opening = (report.loops || {}).engine_opening;
  const unbound = !unread ? "not bound yet" : opening && opening.state !== "opened"
    ? "unknown until the engine has opened" : "unknown while the database is unavailable";
  const models = [["embedding model", model.id ? `${model.id} (${model.dimension}-d)` : unbound]];
  const leg = report.cross_lingual;
  // the multilingual third leg: off, waiting for a question in another language, or how far its vectors are
  models.push(["cross-lingual leg", !leg ? (unread ? "unknown" : "off") : !leg.wanted
    ? `${leg.model}: idle until a question in another language than the documents`
    : `${leg.model}: ${number(leg.vectors)} of ${number(leg.chunks)} chunks have its vector` +
      (leg.refused ? ` (${number(leg.refused)} refused by the model)` : "") +
      (leg.eta_s == null ? "" : `; ${duration(leg.eta_s)} left at ${number(leg.chunks_per_s)} chunks/s`)]);
  // APP_ROLE and its duties, the language model, the hardware and supervisord's programs, as the report has them
  for (const key of ["role", "llm", "hardware", "programs"]) if (report[key]) flatten(key, report[key], models);
  if (report.pull) {
    models.push(["Nextcloud", report.pull.nextcloud_configured ? "configured" : "not configured (push only)"]);
    if (report.pull.detail) models.push(["pull", report.pull.detail]);
  }
  if (report.event_loop) models.push(["event loop lag p99 (1 min)", `${report.event_loop.lag_ms_p99_last_minute} ms`]);
  fillList("models", models);

  const loops = Object.entries(report.loops || {}).map(([name, loop]) => [
    name, loop.state, loop.detail, loop.state === "crashed" || loop.state === "failed" ? "bad" : "",
  ]);
  fillTable("loops", loops, "no background loop");

  const errors = [];
  for (const failed of documents.failed_sources || []) errors.push(["document", failed.source_id, failed.error]);
  for (const [reason, count] of Object.entries(chunks.failure_reasons || {})) {
    errors.push(["embedding", `${number(count)} chunk(s)`, reason]);
  }
  for (const [name, loop] of Object.entries(report.loops || {})) {
    if (loop.state === "crashed" || loop.state === "failed") errors.push([`loop ${name}`, "", loop.detail]);
  }
  fillTable("errors", errors, "no errors");
}

function renderHistory(history) {
  const box = document.getElementById("chart");
  if (history.at.length < 2) {
    if (chart) { chart.destroy(); chart = null; }
    const note = document.createElement("p");
    note.className = "empty";
    note.textContent = `collecting samples (one every ${history.interval_s} s)…`;
    box.replaceChildren(note);
    return;
  }
  const data = [history.at, history.chunks_per_s, history.queue_depth];
  if (chart) {
    chart.setData(data);
    return;
  }
  box.replaceChildren();
  chart = new uPlot({
    width: Math.max(320, box.clientWidth - 24),
    height: 260,
    series: [
      {},
      { label: "throughput (chunks/s)", stroke: THROUGHPUT_COLOUR, width: 2, scale: "rate", points: { show: false } },
      { label: "queue depth (chunks)", stroke: QUEUE_COLOUR, width: 2, scale: "queue", points: { show: false } },
    ],
    axes: [
      {},
      { scale: "rate", label: "chunks/s" },
      { scale: "queue", side: 1, label: "queued chunks", grid: { show: false } },
    ],
  }, data, box);
}

async function fetchJson(url, partialAllowed = false) {
  const response = await fetch(new URL(url, PAGE_URL), { credentials: "same-origin", cache: "no-store" });
  if (response.ok) return response.json();
  // the app's own message says why (a 503 while the engine opens names its step and for how long)
  const body = await response.json().catch(() => ({}));
  const failure = `HTTP ${response.status}${body.error ? `: ${body.error}` : ""}`;
  // a 503 that still carries the report (PostgreSQL down, the engine still opening): drawn, with its error on top
  if (partialAllowed && body.database) return { ...body, failure };
  throw new Error(`${url}: ${failure}`);
}

async function refresh() {
  try {
    const [status, history] = await Promise.allSettled([fetchJson("../status", true), fetchJson("history")]);
    if (status.status === "rejected") throw status.reason;
    const report = status.value;
    // the chart's samples are read from the database too: with a partial report the chart keeps its last ones
    if (history.status === "rejected" && !report.failure) throw history.reason;
    renderReport(report);
    if (history.status === "fulfilled") renderHistory(history.value);
    updatedAt = new Date();
    const failure = report.failure ? `; ${report.failure}` : "";
    setText("updated", `updated ${updatedAt.toLocaleTimeString("en-GB")}${failure}`);
    document.body.dataset.state = report.failure ? "degraded" : "ready";
  } catch (error) {
    if (updatedAt === null) {
      setText("updated", `could not load the status: ${error.message}`);
      document.body.dataset.state = "error";
      return;
    }
    // the figures shown stay, marked stale, with their age: the admin tells how old they are
    const age = elapsed((Date.now() - updatedAt.getTime()) / 1000);
    setText("updated", `updated ${updatedAt.toLocaleTimeString("en-GB")} (${age} ago); figures stale,` +
      ` could not refresh: ${error.message}`);
    document.body.dataset.state = "stale";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
