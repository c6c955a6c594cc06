// Following an event stream (a task's, a SOP run's) that survives a lost connection: it reconnects
// with backoff from the last sequence number the page saw, so nothing is missed or doubled, and shows
// its state (connecting, live, retrying, ended) in the page's `conn` element.
import { socket } from "./api.js";
import { t } from "./i18n.js";

/**
 * Follow `path` (a stream route under /api/v1) until it ends or `close()` is called.
 * after(): the last sequence number seen; isFinal(): the object already finished (no "live" badge);
 * onEvents(events) and onEnd(message) for the stream's two message types.
 */
export function followEvents(path, { conn, after, isFinal, onEvents, onEnd }) {
  let ws = null, retry = 0, timer = null, ended = false, stopped = false;

  function connect() {
    clearTimeout(timer);
    conn.textContent = t("connecting…");
    ws = socket(path, { after: after() });
    ws.onopen = () => { retry = 0; conn.textContent = isFinal() ? "" : t("live"); conn.dataset.state = "live"; };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "events") onEvents(msg.events);
      else if (msg.type === "end") {
        ended = true;
        conn.textContent = "";
        conn.dataset.state = "ended";
        onEnd(msg);
      }
    };
    ws.onclose = () => {
      ws = null;
      if (ended || stopped) return;
      const wait = Math.min(1000 * 2 ** retry, 8000);
      retry += 1;
      conn.textContent = t("connection lost; resuming in {s}s…", { s: Math.round(wait / 1000) });
      conn.dataset.state = "retrying";
      timer = setTimeout(connect, wait);
    };
  }

  connect();
  return { close() { stopped = true; clearTimeout(timer); if (ws) ws.close(); } };
}
