// The TTS overlay: plays each TTS item's audio in the page (so OBS captures it) and tells the
// bot when it ended; the bot's "stop" (a !skip) stops it at once. A page opened (or
// reconnected) in the middle picks the audio up where it is.
"use strict";

const panel = document.getElementById("tts");
const who = panel.querySelector(".who");
const said = panel.querySelector(".text");
const body = document.body;
let playing = null;  // {item_id, audio}
const reported = new Set();

function play(message) {
  if (playing && playing.item_id === message.item_id) return;  // (already playing here)
  stop();
  const audio = new Audio(Overlay.url(message.audio));
  playing = { item_id: message.item_id, audio };
  window.ttsAudio = audio;  // (for tests and for debugging in the OBS inspector)
  who.textContent = `${message.viewer} says`;
  said.textContent = message.text;
  panel.classList.remove("hidden");
  body.dataset.state = "loading";
  body.dataset.item = String(message.item_id);
  const offset = (message.elapsed_ms || 0) / 1000;
  audio.addEventListener("loadedmetadata", () => {
    if (offset > 0.3 && offset < audio.duration) audio.currentTime = offset;
  });
  audio.addEventListener("playing", () => { body.dataset.state = "playing"; });
  audio.addEventListener("ended", () => finished(message.item_id, audio));
  audio.addEventListener("error", () => failed(message.item_id, "the audio could not be loaded"));
  audio.play().catch((error) => failed(message.item_id, String(error)));
}

function finished(itemId, audio) {
  if (reported.has(itemId)) return;
  reported.add(itemId);
  Overlay.report({ type: "ended", item_id: itemId, played: audio.currentTime });
  body.dataset.state = "ended";
  hide(itemId);
}

function failed(itemId, why) {
  if (reported.has(itemId)) return;
  reported.add(itemId);
  Overlay.report({ type: "error", item_id: itemId, message: why });
  hide(itemId);
}

function hide(itemId) {
  if (playing && playing.item_id === itemId) playing = null;
  panel.classList.add("hidden");
}

function stop() {
  if (!playing) return;
  playing.audio.pause();
  body.dataset.state = "stopped";
  hide(playing.item_id);
}

Overlay.connect("tts", (message) => {
  if (message.type === "state") {
    if (message.current) play(message.current);
  } else if (message.type === "tts") {
    play(message);
  } else if (message.type === "stop" && playing && playing.item_id === message.item_id) {
    stop();
  }
});
