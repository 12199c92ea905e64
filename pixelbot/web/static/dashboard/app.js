// Pixel Bot dashboard. Plain JavaScript, no build step, no library.
// Every value that comes from the bot (viewer names, titles, reasons) is put on the page as
// text (textContent / text nodes), never parsed as HTML.
"use strict";

const PREFIX = "/dashboard";
const state = { csrf: "", operator: "", viewer: null, nextBefore: null, adjustKey: newKey() };

// ---------------------------------------------------------------------------- helpers

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function $(id) { return document.getElementById(id); }

// replaceChildren would write a null as the text "null": leave the empty places out
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const number = new Intl.NumberFormat();
function fmt(n) { return number.format(n); }

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

let toastTimer = null;
function toast(message, bad) {
  const box = $("toast");
  box.textContent = message;
  box.classList.toggle("bad", Boolean(bad));
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

async function api(path, body) {
  const options = { credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.headers["X-CSRF-Token"] = state.csrf;
    options.body = JSON.stringify(body);
  }
  const response = await fetch(`${PREFIX}/api${path}`, options);
  if (response.status === 401) {
    window.location.assign(`${PREFIX}/login`);
    throw new Error("logged out");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `the bot answered ${response.status}`);
  return data;
}

async function act(button, path, body, after) {
  if (button) button.disabled = true;
  try {
    const data = await api(path, body);
    if (data.message) toast(data.message);
    if (after) await after(data);
    return data;
  } catch (error) {
    toast(error.message, true);
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---------------------------------------------------------------------------- queue

function queueCard(queue) {
  const status = queue.paused ? "paused" : queue.running ? "playing" : "idle";
  const now = queue.running
    ? el("div", { class: "now" },
        el("div", { class: "what" },
          el("div", { class: "title", text: `#${queue.running.id} ${queue.running.title}` }),
          el("div", { class: "by", text: `for ${queue.running.viewer}` }),
          queue.running.text ? el("div", { class: "text", text: queue.running.text }) : null),
        el("button", {
          type: "button", class: "danger", text: "Skip",
          onclick: (event) => act(event.currentTarget, "/queue/skip",
            { kind: queue.kind, item_id: queue.running.id }, loadQueue),
        }))
    : el("div", { class: "now idle", text: queue.paused ? "Paused" : "Nothing playing" });
  const items = el("ul", { class: "items" }, queue.pending.map((item) =>
    el("li", { class: "item" },
      el("span", { class: "id", text: `#${item.id}` }),
      el("span", { class: "what" }, `${item.title} `, el("span", { class: "by", text: `for ${item.viewer}` })),
      item.cost ? el("span", { class: "cost", text: fmt(item.cost) }) : null)));
  const more = queue.pending_count > queue.pending.length
    ? el("div", { class: "count", text: `and ${queue.pending_count - queue.pending.length} more` }) : null;
  return el("article", { class: "queue", dataset: { kind: queue.kind } },
    el("div", { class: "queue-head" },
      el("h2", { text: queue.kind }),
      el("span", { class: `pill ${status}`, text: status })),
    now,
    el("div", { class: "count", text: queue.pending_count ? `${queue.pending_count} waiting` : "Nothing waiting" }),
    items, more,
    el("div", { class: "queue-actions" },
      queue.paused
        ? el("button", { type: "button", class: "ghost", text: "Resume",
            onclick: (e) => act(e.currentTarget, "/queue/resume", { kind: queue.kind }, loadQueue) })
        : el("button", { type: "button", class: "ghost", text: "Pause",
            onclick: (e) => act(e.currentTarget, "/queue/pause", { kind: queue.kind }, loadQueue) }),
      el("button", { type: "button", class: "danger ghost", text: "Clear waiting",
        disabled: !queue.pending_count,
        onclick: (e) => {
          if (window.confirm(`Cancel and refund all ${queue.pending_count} waiting ${queue.kind} items?`)) {
            act(e.currentTarget, "/queue/clear", { kind: queue.kind }, loadQueue);
          }
        } })));
}

async function loadQueue() {
  const data = await api("/queue");
  const box = $("queues");
  box.replaceChildren(...(data.kinds.length
    ? data.kinds.map(queueCard)
    : [el("p", { class: "muted", text: "The queue is not running." })]));
}

function setupQueue() {
  for (const button of document.querySelectorAll("[data-all]")) {
    button.addEventListener("click", () => {
      const what = button.dataset.all;
      if (what === "clear" && !window.confirm("Cancel and refund everything waiting?")) return;
      act(button, `/queue/${what}`, { kind: "all" }, loadQueue);
    });
  }
  return loadQueue();
}

// ---------------------------------------------------------------------------- viewers

async function search(text) {
  const data = await api(`/viewers?q=${encodeURIComponent(text)}`);
  const list = $("results");
  if (!data.viewers.length) {
    list.replaceChildren(el("li", { class: "empty", text: `Nobody matches "${text}".` }));
    return;
  }
  list.replaceChildren(...data.viewers.map((viewer) =>
    el("li", {},
      el("button", {
        type: "button", dataset: { user: viewer.id },
        onclick: () => openViewer(viewer.id),
      },
      el("span", { class: "name", text: viewer.name }),
      el("span", { class: "points", text: `${fmt(viewer.points)} · lvl ${viewer.level}` })))));
}

function ledgerRow(entry) {
  const sign = entry.amount > 0 ? "plus" : "minus";
  return el("tr", {},
    el("td", { class: "when", text: when(entry.created_at) }),
    el("td", { class: `num ${sign}`, text: `${entry.amount > 0 ? "+" : ""}${fmt(entry.amount)}` }),
    el("td", { class: "num", text: fmt(entry.balance_after) }),
    el("td", { text: `${entry.kind}: ${entry.reason}` }),
    el("td", { text: entry.actor || "" }));
}

async function openViewer(userId, before) {
  if (state.viewer !== userId) state.adjustKey = newKey();  // another viewer: another adjustment
  const data = await api(`/viewers/${userId}${before ? `?before=${before}` : ""}`);
  const viewer = data.viewer;
  state.viewer = viewer.id;
  state.nextBefore = data.next_before;
  $("viewer").hidden = false;
  $("viewer-name").textContent = viewer.name;
  $("viewer-ids").textContent = viewer.identities.map((i) => `${i.platform}: ${i.login}`).join(" · ");
  $("viewer-points").textContent = fmt(viewer.points);
  $("viewer-level").textContent = fmt(viewer.level);
  $("viewer-xp").textContent = fmt(viewer.xp);
  const rows = data.ledger.map(ledgerRow);
  if (before) $("ledger").append(...rows);
  else $("ledger").replaceChildren(...rows);
  $("ledger-more").hidden = !data.next_before;
  for (const button of document.querySelectorAll("#results button")) {
    button.setAttribute("aria-current", String(Number(button.dataset.user) === viewer.id));
  }
}

function setupViewers() {
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("search-text").value.trim();
    if (text) search(text).catch((error) => toast(error.message, true));
  });
  $("ledger-more").addEventListener("click", () => {
    if (state.viewer && state.nextBefore) {
      openViewer(state.viewer, state.nextBefore).catch((error) => toast(error.message, true));
    }
  });
  for (const id of ["adjust-amount", "adjust-reason"]) {
    $(id).addEventListener("input", () => { state.adjustKey = newKey(); });
  }
  $("adjust").addEventListener("submit", (event) => {
    event.preventDefault();
    const amount = Number($("adjust-amount").value);
    if (!Number.isInteger(amount) || amount === 0) {
      toast("Give a whole number of points, like 50 or -20.", true);
      return;
    }
    const button = event.submitter || $("adjust").querySelector("button");
    act(button, `/viewers/${state.viewer}/adjust`,
      { amount, reason: $("adjust-reason").value, key: state.adjustKey },
      async () => {
        state.adjustKey = newKey();
        $("adjust-amount").value = "";
        $("adjust-reason").value = "";
        await openViewer(state.viewer);
      });
  });
  const wanted = new URLSearchParams(window.location.search).get("q");
  if (wanted) {
    $("search-text").value = wanted;
    return search(wanted);
  }
  return Promise.resolve();
}

// ---------------------------------------------------------------------------- redeems

async function loadRedeems() {
  const data = await api("/redeems");
  const list = $("redeems");
  if (!data.redeems.length) {
    list.replaceChildren(el("li", { class: "muted", text: "No redeems are set up in config.yaml." }));
    return;
  }
  list.replaceChildren(...data.redeems.map((redeem) => {
    const input = el("input", {
      type: "checkbox", role: "switch", checked: redeem.enabled,
      "aria-label": `${redeem.title} on or off`,
    });
    input.addEventListener("change", async () => {
      input.disabled = true;
      const done = await act(null, `/redeems/${encodeURIComponent(redeem.key)}`, { enabled: input.checked });
      if (!done) input.checked = !input.checked;
      input.disabled = false;
    });
    return el("li", { class: "redeem", dataset: { key: redeem.key } },
      el("div", { class: "what" },
        el("div", { class: "title", text: redeem.title }),
        el("div", { class: "meta", text: `!${redeem.key} · ${fmt(redeem.cost)} · ${redeem.action}` }),
        redeem.unavailable ? el("div", { class: "note", text: `Unavailable: ${redeem.unavailable}` }) : null),
      el("label", { class: "switch" }, input, el("span")));
  }));
}

// ---------------------------------------------------------------------------- events

function eventRow(event, fresh) {
  return el("li", { class: fresh ? "event fresh" : "event" },
    el("time", { datetime: event.at, text: when(event.at) }),
    el("span", { class: "kind", text: event.kind }),
    el("span", { class: "line" },
      event.viewer ? el("span", { class: "viewer", text: event.viewer }) : null,
      event.text));
}

async function loadEvents() {
  const data = await api("/events");
  const list = $("events");
  list.replaceChildren(...(data.events.length
    ? data.events.map((event) => eventRow(event, false))
    : [el("li", { class: "muted", text: "Nothing has happened yet." })]));
}

// ---------------------------------------------------------------------------- system

function showVerify(report) {
  const box = $("verify-result");
  if (!report) {
    fill(box, "Not checked since the bot started.");
    return;
  }
  const counts = Object.entries(report.counts || {}).map(([table, n]) => `${table}: ${fmt(n)}`).join(" · ");
  fill(box,
    el("div", { class: `status ${report.ok ? "ok" : "bad"}`,
      text: report.ok ? "Everything adds up" : `${report.violations.length} problem(s) found` }),
    el("div", { class: "muted", text: `checked ${when(report.checked_at)}${counts ? ` · ${counts}` : ""}` }),
    report.ok ? null : el("ul", { class: "problems" },
      report.violations.slice(0, 20).map((v) => el("li", { text: `${v.check}: ${v.detail}` }))));
}

function showBackups(backups) {
  $("backups").replaceChildren(...(backups.length
    ? backups.slice(0, 20).map((backup) => el("li", {},
        el("span", { text: backup.name }),
        el("span", { class: "muted", text: `${(backup.bytes / 1024).toFixed(0)} KB` })))
    : [el("li", { class: "muted", text: "No backups yet." })]));
}

// Refused sockets are pages that got no live updates: too many tabs, a page stuck
// reconnecting, or (overlays) a leaked key. The setting named raises the cap.
function showSockets(sockets) {
  $("sockets").replaceChildren(...(sockets || []).map((kind) => el("li", { "data-kind": kind.kind },
    el("span", { text: `${kind.kind} sockets: ${fmt(kind.open)} open of ${fmt(kind.cap)}` }),
    el("span", { class: kind.refused ? "refused" : "muted",
      text: `${kind.kind} sockets refused: ${fmt(kind.refused)} (cap ${kind.setting})` }))));
}

function showJobs(jobs) {
  $("jobs").replaceChildren(...(jobs.length ? jobs.map((job) => {
    const last = job.last_run;
    const lastText = last
      ? `${last.outcome} · ${when(last.started_at)}${last.error ? ` · ${last.error}` : ""}`
      : "never";
    return el("tr", {},
      el("td", {}, el("strong", { text: job.name }), el("div", { class: "muted what", text: job.what })),
      el("td", { text: job.enabled ? (job.schedule || "") : "off" }),
      el("td", { class: last && last.outcome === "failed" ? "minus" : "", text: lastText }),
      el("td", { text: job.next_run ? when(job.next_run) : "" }));
  }) : [el("tr", {}, el("td", { colspan: 4, class: "muted", text: "No scheduled jobs." }))]));
}

async function loadSystem() {
  const data = await api("/system");
  showVerify(data.verify);
  showBackups(data.backups);
  showSockets(data.sockets);
  showJobs(data.jobs);
}

function setupSystem() {
  $("verify").addEventListener("click", (event) =>
    act(event.currentTarget, "/system/verify", {}, (report) => showVerify(report)));
  $("backup").addEventListener("click", (event) =>
    act(event.currentTarget, "/system/backup", {}, () => loadSystem()));
  return loadSystem();
}

// ---------------------------------------------------------------------------- live updates

// Reconnect after 1 s, doubling up to 15 s while the bot cannot be reached; from 1 s again
// once a socket opens. A socket the bot opens and then refuses (too many dashboard pages open,
// code 1013) waits the longest, so a refused tab does not knock every second, and the live
// indicator says why (the bot's reason names the setting).
const FIRST_RETRY = 1000;
const LONGEST_RETRY = 15000;
const TRY_AGAIN_LATER = 1013;
let retry = FIRST_RETRY;
let queueTimer = null;
function showLive(on, why) {
  const live = $("live");
  live.classList.toggle("on", on);
  live.classList.toggle("refused", Boolean(why));
  live.textContent = why ? "live: refused" : "live";
  live.title = why ? `Live updates refused: ${why}. Trying again every ${LONGEST_RETRY / 1000} s.`
    : "Live updates";
}

function connect(page) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}${PREFIX}/ws`);
  socket.addEventListener("open", () => { retry = FIRST_RETRY; showLive(true, ""); });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401) { window.location.assign(`${PREFIX}/login`); return; }
    const refused = event.code === TRY_AGAIN_LATER;
    showLive(false, refused ? event.reason || "the bot has too many pages open" : "");
    if (refused) retry = LONGEST_RETRY;
    setTimeout(() => connect(page), retry);
    retry = Math.min(retry * 2, LONGEST_RETRY);
  });
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    if (data.type !== "event") return;
    if (page === "events") {
      const list = $("events");
      const empty = list.querySelector(".muted");
      if (empty) empty.remove();
      list.prepend(eventRow(data.event, true));
      while (list.children.length > 200) list.lastElementChild.remove();
    } else if (page === "queue") {
      clearTimeout(queueTimer);
      queueTimer = setTimeout(() => loadQueue().catch(() => {}), 150);
    } else if (page === "redeems" && data.event.kind === "dashboard") {
      loadRedeems().catch(() => {});
    }
  });
}

// ---------------------------------------------------------------------------- start

const PAGES = {
  queue: setupQueue,
  viewers: setupViewers,
  redeems: loadRedeems,
  events: loadEvents,
  system: setupSystem,
};

async function start() {
  const page = document.body.dataset.page in PAGES ? document.body.dataset.page : "queue";
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
  }
  $(`page-${page}`).hidden = false;
  const session = await api("/session");
  state.csrf = session.csrf;
  state.operator = session.operator;
  $("operator").textContent = session.operator;
  $("logout-csrf").value = session.csrf;
  try {
    await PAGES[page]();
  } catch (error) {
    toast(error.message, true);
  }
  connect(page);
  document.body.dataset.ready = "true";  // (tests wait for this)
}

start().catch((error) => toast(error.message, true));
