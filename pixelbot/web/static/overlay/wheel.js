// The wheel overlay: animates each recorded spin so it lands on the recorded prize, then
// tells the bot it ended (the bot announces the prize only then).
//
// Angles are degrees clockwise from the pointer at the top. Slice i spans the cumulative
// weights before it; the spin's roll (in [0, 1)) is the point of the wheel that must end under
// the pointer, so the final rotation is TURNS full turns minus roll * 360.
"use strict";

const TURNS = 6;
const COLORS = ["#8b5cf6", "#ec4899", "#f59e0b", "#10b981", "#3b82f6", "#ef4444", "#14b8a6",
  "#a855f7"];
const stage = document.getElementById("wheel-stage");
const canvas = document.getElementById("wheel-canvas");
const caption = document.getElementById("wheel-caption");
const body = document.body;
let spin = null;  // the spin shown: its message, start time, final angle
let hideTimer = null;
const reported = new Set();

function slices(prizes) {
  const total = prizes.reduce((sum, prize) => sum + prize.weight, 0);
  let start = 0;
  return prizes.map((prize) => {
    const end = start + (prize.weight / total) * 360;
    const slice = { name: prize.name, start, end };
    start = end;
    return slice;
  });
}

function finalAngle(message, parts) {
  const slice = parts[message.prize_index];
  let point = message.roll * 360;
  // the recorded prize wins over rounding at a slice's edge
  const margin = Math.min(0.5, (slice.end - slice.start) / 4);
  point = Math.min(Math.max(point, slice.start + margin), slice.end - margin);
  return TURNS * 360 - point;
}

function draw(parts) {
  const context = canvas.getContext("2d");
  const radius = canvas.width / 2;
  context.clearRect(0, 0, canvas.width, canvas.height);
  parts.forEach((slice, index) => {
    const from = ((slice.start - 90) * Math.PI) / 180;
    const to = ((slice.end - 90) * Math.PI) / 180;
    context.beginPath();
    context.moveTo(radius, radius);
    context.arc(radius, radius, radius - 6, from, to);
    context.closePath();
    context.fillStyle = COLORS[index % COLORS.length];
    context.fill();
    context.lineWidth = 4;
    context.strokeStyle = "rgba(255, 255, 255, 0.85)";
    context.stroke();
    context.save();
    context.translate(radius, radius);
    context.rotate((from + to) / 2);
    context.textAlign = "right";
    context.textBaseline = "middle";
    context.fillStyle = "#fff";
    context.font = "bold 34px sans-serif";
    context.shadowColor = "rgba(0, 0, 0, 0.6)";
    context.shadowBlur = 4;
    context.fillText(slice.name.slice(0, 22), radius - 40, 0);  // canvas text: never HTML
    context.restore();
  });
  context.beginPath();
  context.arc(radius, radius, 46, 0, 2 * Math.PI);
  context.fillStyle = "#1e1b4b";
  context.fill();
}

function rotate(angle) {
  canvas.style.transform = `rotate(${angle}deg)`;
  body.dataset.rotation = String(angle);
}

function ease(t) {
  return 1 - Math.pow(1 - t, 3);
}

function start(message) {
  if (spin && spin.message.item_id === message.item_id) return;  // (already shown here)
  clearTimeout(hideTimer);
  const parts = slices(message.prizes);
  spin = {
    message,
    parts,
    angle: finalAngle(message, parts),
    started: performance.now() - (message.elapsed_ms || 0),
  };
  draw(parts);
  caption.textContent = `${message.viewer} is spinning the wheel!`;
  caption.classList.remove("hidden");
  stage.classList.remove("hidden");
  body.dataset.state = "spinning";
  body.dataset.item = String(message.item_id);
  delete body.dataset.angle;
  requestAnimationFrame(frame);
}

function frame(now) {
  if (!spin || spin.done) return;
  const duration = Math.max(spin.message.spin_ms, 1);
  const t = Math.min((now - spin.started) / duration, 1);
  rotate(spin.angle * ease(t));
  if (t < 1) {
    requestAnimationFrame(frame);
    return;
  }
  landed();
}

function landed() {
  spin.done = true;
  const message = spin.message;
  const prize = spin.parts[message.prize_index].name;
  rotate(spin.angle);
  body.dataset.angle = String(spin.angle);
  body.dataset.state = "landed";
  caption.textContent = `${message.viewer} won ${prize}!`;
  if (!reported.has(message.item_id)) {
    reported.add(message.item_id);
    Overlay.report({ type: "ended", item_id: message.item_id, angle: spin.angle, prize });
  }
  hideTimer = setTimeout(hide, 5000);
}

function hide() {
  stage.classList.add("hidden");
  caption.classList.add("hidden");
  body.dataset.state = "idle";
  spin = null;
}

Overlay.connect("wheel", (message) => {
  if (message.type === "state") {
    if (message.current) start(message.current);
  } else if (message.type === "spin") {
    start(message);
  } else if (message.type === "stop" && spin && spin.message.item_id === message.item_id) {
    clearTimeout(hideTimer);
    hide();
  }
});
