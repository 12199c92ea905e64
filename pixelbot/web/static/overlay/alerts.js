// The alerts overlay: the bot sends one alert at a time (follow, sub, gift, tip, cheer, raid)
// and says when it ends; a page opened late shows the one on screen for its remaining time.
"use strict";

const KINDS = { follow: "New follower", sub: "New subscriber", gift: "Gifted subs",
  tip: "Tip", cheer: "Cheer", raid: "Raid" };
const box = document.getElementById("alert");
const kindLine = box.querySelector(".kind");
const textLine = box.querySelector(".text");
let shown = null;
let endTimer = null;
let sound = null;

function show(alert, remaining) {
  if (shown === alert.id) return;
  shown = alert.id;
  kindLine.textContent = KINDS[alert.kind] || alert.kind;
  textLine.textContent = alert.text;
  box.classList.remove("hidden");
  document.body.dataset.state = "showing";
  document.body.dataset.alert = String(alert.id);
  if (alert.sound && remaining > 500) {
    sound = new Audio(Overlay.url(alert.sound));
    sound.play().catch(() => {});  // a missing sound never holds an alert up
  }
  clearTimeout(endTimer);
  endTimer = setTimeout(() => end(alert.id), Math.max(remaining, 0) + 1000);  // (if the end is lost)
}

function end(id) {
  if (shown !== id) return;
  shown = null;
  box.classList.add("hidden");
  document.body.dataset.state = "idle";
  if (sound) { sound.pause(); sound = null; }
}

Overlay.connect("alerts", (message) => {
  if (message.type === "state") {
    if (message.current) show(message.current, message.current.remaining_ms);
    else if (shown !== null) end(shown);
  } else if (message.type === "alert") {
    show(message, message.remaining_ms);
  } else if (message.type === "alert_end") {
    end(message.id);
  }
});
