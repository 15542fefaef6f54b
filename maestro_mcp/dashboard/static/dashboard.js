// The maestro dashboard's only script: live sections over server-sent events, forms sent with fetch.
// Hand-written, no dependencies, served from the wheel. Sections arrive as HTML the server escaped;
// the Content-Security-Policy forbids inline script, so nothing in them can run.
(() => {
  "use strict";
  const body = document.body;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const conn = document.getElementById("conn");
  const flash = document.getElementById("flash");
  const versions = {};
  for (const pair of (body.dataset.versions || "").split(",")) {
    const [name, version] = pair.split(":");
    if (name && version) versions[name] = version;
  }

  function fillCsrf(root) {
    for (const input of root.querySelectorAll('input[name="csrf"]')) input.value = csrf;
  }

  function span(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d";
  }

  function ages(root) {
    const now = Date.now();
    for (const t of root.querySelectorAll("time.age, time.until")) {
      const at = Date.parse(t.getAttribute("datetime"));
      if (Number.isNaN(at)) continue;
      if (!t.title) t.title = new Date(at).toLocaleString();
      const past = span((now - at) / 1000);
      if (t.classList.contains("until")) t.textContent = "in " + span((at - now) / 1000);
      else t.textContent = t.classList.contains("bare") ? past : past + " ago";
    }
  }

  function swap(id, html, version) {
    const el = document.querySelector('[data-section="' + CSS.escape(id) + '"]');
    if (!el) return;
    // Keep what the reader is typing or has chosen, which threads are open, and where the focus is.
    const kept = {};
    for (const f of el.querySelectorAll("input[id], textarea[id], select[id]")) {
      kept[f.id] = f.type === "checkbox" ? f.checked : f.value;
    }
    const open = {};
    for (const d of el.querySelectorAll("details[id]")) open[d.id] = d.open;
    const active = document.activeElement;
    const focused = active && el.contains(active) && active.id ? active.id : null;
    el.innerHTML = html;
    for (const [fid, value] of Object.entries(kept)) {
      const f = document.getElementById(fid);
      if (!f || !el.contains(f)) continue;
      if (f.type === "checkbox") f.checked = value; else if (f.type !== "hidden") f.value = value;
    }
    for (const [did, isOpen] of Object.entries(open)) {
      const d = document.getElementById(did);
      if (d && el.contains(d)) d.open = isOpen;
    }
    if (focused) {
      const f = document.getElementById(focused);
      if (f) f.focus();
    }
    fillCsrf(el);
    ages(el);
    versions[id] = version;
    document.dispatchEvent(new CustomEvent("maestro:swap", { detail: { id: id, version: version } }));
  }

  function state(text, cls) {
    if (!conn) return;
    conn.textContent = text;
    conn.className = "conn " + cls;
  }

  let retry = 1000;
  function connect() {
    const feed = body.dataset.feed;
    if (!feed) { state("", "off"); return; }
    const have = Object.entries(versions).map(([k, v]) => k + ":" + v).join(",");
    const source = new EventSource("/events?feed=" + encodeURIComponent(feed) + "&v=" + encodeURIComponent(have));
    source.addEventListener("open", () => { retry = 1000; state("live", "live"); });
    source.addEventListener("section", (event) => {
      const data = JSON.parse(event.data);
      swap(data.id, data.html, data.v);
    });
    source.addEventListener("error", () => {
      // Reopen with the versions this page has now (EventSource's own retry would resend the old ones).
      source.close();
      state("reconnecting…", "down");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
  }

  function say(message, ok) {
    if (!flash) return;
    flash.hidden = false;
    flash.textContent = message;
    flash.className = "flash " + (ok ? "ok" : "bad");
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("js-post")) return;
    event.preventDefault();
    const data = new FormData(form, event.submitter);
    data.set("csrf", csrf);
    const buttons = form.querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(data),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({ ok: false, message: "HTTP " + response.status }));
      say(answer.message, answer.ok);
      if (answer.ok && form.classList.contains("steer")) form.reset();
    } catch (err) {
      say("Could not reach the dashboard: " + err, false);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  });

  fillCsrf(document);
  ages(document);
  setInterval(() => ages(document), 1000); // ages tick locally; nothing is fetched
  connect();
})();
