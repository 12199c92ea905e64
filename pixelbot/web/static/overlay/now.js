// The "now" overlay: what is playing and the next items waiting in each queue.
"use strict";

const playingList = document.getElementById("playing");
const waitingList = document.getElementById("waiting");
const LABELS = { tts: "TTS", wheel: "Wheel", effect: "Effect", ai: "AI" };

function line(entry) {
  const item = Overlay.el("li");
  item.dataset.item = String(entry.item_id);
  item.append(Overlay.el("span", "kind", LABELS[entry.kind] || entry.kind));
  item.append(Overlay.el("span", "title", entry.title || entry.kind));
  item.append(Overlay.el("span", "viewer", ` · ${entry.viewer}`));
  return item;
}

function render(now) {
  playingList.replaceChildren(...now.playing.map(line));
  if (!now.playing.length) playingList.append(Overlay.el("li", "empty", "Nothing playing"));
  const rows = [];
  for (const [kind, entries] of Object.entries(now.waiting)) {
    entries.forEach((entry) => rows.push(line(entry)));
    const more = (now.counts[kind] || 0) - entries.length;
    if (more > 0) rows.push(Overlay.el("li", "empty", `+${more} more ${LABELS[kind] || kind}`));
  }
  waitingList.replaceChildren(...rows);
  if (!rows.length) waitingList.append(Overlay.el("li", "empty", "The queue is empty"));
  document.body.dataset.playing = String(now.playing.length);
  document.body.dataset.waiting = String(Object.values(now.counts).reduce((a, b) => a + b, 0));
}

Overlay.connect("now", (message) => {
  if (message.type === "state" && message.now) render(message.now);
  else if (message.type === "now") render(message.now);
});
