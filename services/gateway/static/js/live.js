// Live updates: the gateway's Server-Sent Events stream (GET /api/v1/live), read with
// fetch so that it carries the bearer token. Each "change" means the tracker took in an
// event; the page reloads what it shows through the API. Reconnects by itself; when
// the stream cannot be had, it falls back to looking again every 30 s.
import { session } from "./api.js";

const POLL_MS = 30000;
let controller = null;
let state = "off";
let pollTimer = null;
let failures = 0;

function setState(next, onState) {
  state = next;
  onState?.(next);
}

export function liveState() { return state; }

export function stopLive() {
  controller?.abort();
  controller = null;
  clearInterval(pollTimer);
  pollTimer = null;
  state = "off";
}

/** Start (once per sign-in) calling onChange() whenever something changed. */
export function startLive(onChange, onState) {
  if (controller) return;
  const mine = new AbortController();
  controller = mine;
  const run = async () => {
    while (controller === mine) {
      const s = session();
      if (!s?.token) { stopLive(); return; }
      try {
        const response = await fetch("/api/v1/live", { headers: { Authorization: `Bearer ${s.token}`, Accept: "text/event-stream" }, signal: mine.signal });
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        failures = 0;
        clearInterval(pollTimer);
        pollTimer = null;
        setState("live", onState);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            if (/^event: change$/m.test(block)) onChange();
          }
        }
      } catch (err) {
        if (mine.signal.aborted) return;
        failures += 1;
      }
      if (controller !== mine) return;
      if (failures >= 3 && !pollTimer) {          // fall back to polling meanwhile
        setState("polling", onState);
        pollTimer = setInterval(() => { if (!document.hidden) onChange(); }, POLL_MS);
      }
      await new Promise((r) => setTimeout(r, Math.min(2000 * 2 ** Math.min(failures, 4), 30000)));
    }
  };
  run();
}
