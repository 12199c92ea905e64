// Shared by every overlay page: the live channel to the bot, reconnecting by itself.
// A page calls Overlay.connect(name, onMessage); on every (re)connection the bot first sends
// {type: "state", ...} with what the overlay shows now, then each change. Text from viewers
// is only ever put on the page with textContent, never as HTML.
"use strict";

const Overlay = (() => {
  const params = new URLSearchParams(window.location.search);
  const key = params.get("key") || "";
  let socket = null;

  function url(path) {
    // a file the bot serves to this overlay (TTS audio, an alert sound), with the key
    return new URL(path + (path.includes("?") ? "&" : "?") + "key=" + encodeURIComponent(key),
      window.location.href).toString();
  }

  // Reconnect after 250 ms, doubling up to 5 s while the bot cannot be reached. The wait
  // starts again from 250 ms only once a connection has been useful (the bot's "state" came):
  // a socket the bot accepts and then refuses (too many pages open with this key, code 1013)
  // waits the longest, so a refused page does not knock several times a second.
  const FIRST_DELAY = 250;
  const LONGEST_DELAY = 5000;
  const TRY_AGAIN_LATER = 1013;

  function connect(name, onMessage) {
    let delay = FIRST_DELAY;
    const open = () => {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      const address = `${scheme}//${window.location.host}/overlay/ws?overlay=${name}` +
        `&key=${encodeURIComponent(key)}`;
      socket = new WebSocket(address);
      socket.onmessage = (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch (error) { return; }
        if (message.type === "state") {  // the bot took this page in
          delay = FIRST_DELAY;
          document.body.dataset.connected = "true";
        }
        onMessage(message);
      };
      socket.onclose = (event) => {
        document.body.dataset.connected = "false";
        socket = null;
        if (event.code === TRY_AGAIN_LATER) {
          // (shown in OBS: nothing is drawn; the reason names the setting, for the console)
          console.warn(`overlay refused by the bot: ${event.reason}`);
          delay = LONGEST_DELAY;
        }
        setTimeout(open, delay);
        delay = Math.min(delay * 2, LONGEST_DELAY);
      };
    };
    open();
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  // Tell the bot an item ended; if the connection is down, tell it once it is back.
  const unsent = [];
  function report(message) {
    if (!send(message)) unsent.push(message);
  }
  setInterval(() => {
    while (unsent.length && send(unsent[0])) unsent.shift();
  }, 250);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  return { connect, report, url, el };
})();
