// The delivery console's one script: live updates by polling the admin
// API, and the dead letters' select-all box. Values are written with
// textContent only, never as markup.
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

  const list = document.getElementById("events");
  if (list && list.dataset.live === "true") {
    const query = list.dataset.query;
    poll("/api/events" + (query ? "?" + query : ""), (body) => {
      const rows = body.events.map(row);
      list.replaceChildren(...rows);
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
