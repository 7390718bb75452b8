// The delivery console's one script: the live event list (server-sent
// events from the admin API), the event page's status, and the dead
// letters' select-all box. Values are written with textContent only,
// never as markup.
"use strict";

(function () {
  const POLL_MS = 2000;

  function text(el, value) {
    el.textContent = value == null ? "" : String(value);
    return el;
  }

  function time(ms) {
    return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
  }

  function cell(tr, value, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    tr.appendChild(text(td, value));
    return td;
  }

  function row(e) {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    const link = document.createElement("a");
    link.href = "/events/" + encodeURIComponent(e.id);
    text(link, e.id);
    cell(tr, "").appendChild(link);
    cell(tr, time(e.received_at_ms));
    cell(tr, e.route);
    cell(tr, e.kind);
    const status = document.createElement("span");
    status.className = "status status-" + e.status;
    cell(tr, "").appendChild(text(status, e.status));
    cell(tr, e.attempts);
    cell(tr, e.delivery_id, "mono");
    cell(tr, e.last_error, "error");
    return tr;
  }

  function poll(url, apply) {
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : null))
        .then((body) => { if (body) apply(body); })
        .catch(() => {})
        .finally(() => setTimeout(tick, POLL_MS));
    }
    setTimeout(tick, POLL_MS);
  }

  // The server sends the page whenever it changes; EventSource
  // reconnects by itself after a dropped connection.
  const list = document.getElementById("events");
  if (list && list.dataset.live === "true" && window.EventSource) {
    const query = list.dataset.query;
    const live = new EventSource("/api/events/stream" + (query ? "?" + query : ""));
    live.addEventListener("page", (message) => {
      const body = JSON.parse(message.data);
      list.replaceChildren(...body.events.map(row));
      list.dataset.updates = String(Number(list.dataset.updates || 0) + 1);
    });
  }

  const status = document.getElementById("event-status");
  if (status) {
    const attempts = document.getElementById("event-attempts");
    const error = document.getElementById("event-error");
    poll("/api/events/" + encodeURIComponent(status.dataset.id), (body) => {
      const r = body.record;
      text(status, r.status);
      status.className = "status status-" + r.status;
      text(attempts, r.attempts);
      text(error, r.last_error);
    });
  }

  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('#dead input[name="id"]').forEach((box) => {
        box.checked = all.checked;
      });
    });
  }
})();
