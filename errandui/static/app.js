// errandui: the dashboard's page script. It renders the state that the
// server streams at "events" (server-sent events). Every value from the
// server is put in the page as text (textContent, attributes), never as HTML.
"use strict";

(() => {
  const TOKEN_HEADER = "X-Errand-Token";
  const token = document.querySelector('meta[name="errand-token"]').content;
  const actions = document.body.dataset.actions === "true";
  const nf = new Intl.NumberFormat("en-US");
  const rateFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  let skew = 0; // server clock minus ours, in ms
  let lastState = null;

  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function now() {
    return Date.now() + skew;
  }

  // fmtDur formats a duration in ms for humans: 850ms, 12s, 3m 04s, 2h 05m, 3d 4h.
  function fmtDur(ms) {
    ms = Math.max(0, Math.round(ms));
    if (ms < 1000) return ms + "ms";
    let s = Math.floor(ms / 1000);
    if (s < 60) return s + "s";
    let m = Math.floor(s / 60);
    s %= 60;
    if (m < 60) return m + "m " + String(s).padStart(2, "0") + "s";
    let h = Math.floor(m / 60);
    m %= 60;
    if (h < 24) return h + "h " + String(m).padStart(2, "0") + "m";
    const d = Math.floor(h / 24);
    h %= 24;
    return d + "d " + h + "h";
  }

  function fmtTime(ms) {
    return new Date(ms).toLocaleString();
  }

  // --- connection status and messages -------------------------------------

  function setStatus(state, text) {
    const s = $("#status");
    s.dataset.state = state;
    $("#status-text").textContent = text;
  }

  let toastTimer = 0;
  function toast(text, bad) {
    const t = $("#toast");
    t.textContent = text;
    t.dataset.tone = bad ? "bad" : "ok";
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  // --- counts ---------------------------------------------------------------

  function renderStats(s) {
    const st = s.stats;
    for (const e of document.querySelectorAll("[data-stat]")) {
      const v = st[e.dataset.stat];
      e.textContent = typeof v === "number" ? nf.format(v) : "–";
    }
    const busy = st.workers > 0 ? Math.round((100 * st.running) / st.workers) : 0;
    $("#hint-workers").textContent = st.workers > 0 ? busy + "% busy" : "none started";
    $("#hint-running").textContent = oldestHint(s.running, "longest for ");
    $("#hint-queued").textContent = oldestHint(s.queued, "oldest waits ");
    $("#hint-scheduled").textContent = "delayed or backing off";
    $("#hint-idle").textContent = st.idle > 0 ? "waiting for work" : st.workers > 0 ? "all workers busy" : "\u00a0";
  }

  function oldestHint(list, prefix) {
    if (!list.tasks.length) return "\u00a0";
    return prefix + fmtDur(now() - list.tasks[0].since);
  }

  // --- throughput chart ----------------------------------------------------

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // niceStep returns the gridline step for values up to peak: 1, 2 or 5
  // times a power of ten, so that four steps or fewer reach the peak.
  function niceStep(peak) {
    const raw = Math.max(peak, 4) / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) {
      if (m * p >= raw) return m * p;
    }
    return 10 * p;
  }

  function renderRate(tp) {
    // The last second is still counting: average the ten before it.
    const n = tp.succeeded.length;
    let sum = 0;
    for (let i = Math.max(0, n - 11); i < n - 1; i++) sum += tp.succeeded[i] + tp.failed[i];
    $("#rate").textContent = rateFmt.format(sum / 10);
  }

  function drawChart(tp) {
    const c = $("#chart");
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    const n = tp.succeeded.length;
    let peak = 0;
    for (let i = 0; i < n; i++) peak = Math.max(peak, tp.succeeded[i] + tp.failed[i]);
    const step = niceStep(peak);
    const lines = Math.max(1, Math.ceil(peak / step));
    const top = step * lines;
    const pad = { l: 44, r: 10, t: 10, b: 22 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;

    ctx.font = "11px " + cssVar("--font");
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    ctx.strokeStyle = cssVar("--grid");
    ctx.fillStyle = cssVar("--muted");
    ctx.lineWidth = 1;
    for (let k = 0; k <= lines; k++) {
      const y = Math.round(pad.t + ph - (ph * k) / lines) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, y);
      ctx.lineTo(w - pad.r, y);
      ctx.stroke();
      ctx.fillText(nf.format(step * k), pad.l - 8, y);
    }

    const bw = pw / n;
    const gap = bw > 3 ? 1 : 0;
    const ok = cssVar("--ok");
    const bad = cssVar("--bad");
    for (let i = 0; i < n; i++) {
      const s = tp.succeeded[i];
      const f = tp.failed[i];
      if (!s && !f) continue;
      const x = pad.l + i * bw;
      const sh = (ph * s) / top;
      const fh = (ph * f) / top;
      ctx.fillStyle = ok;
      ctx.fillRect(x, pad.t + ph - sh, Math.max(1, bw - gap), sh);
      ctx.fillStyle = bad;
      ctx.fillRect(x, pad.t + ph - sh - fh, Math.max(1, bw - gap), fh);
    }

    // Time axis: a label each minute (each 10 s for short windows).
    ctx.fillStyle = cssVar("--muted");
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const every = n > 120 ? 60 : 10;
    for (let ago = 0; ago < n; ago += every) {
      const x = pad.l + (n - 1 - ago + 0.5) * bw;
      const label = ago === 0 ? "now" : every === 60 ? "-" + ago / 60 + "m" : "-" + ago + "s";
      ctx.fillText(label, Math.min(x, w - pad.r - 12), pad.t + ph + 7);
    }
  }

  // --- lists ---------------------------------------------------------------

  function countText(total, shown, noun) {
    if (total > shown) return nf.format(shown) + " of " + nf.format(total);
    return nf.format(total) + (noun ? " " + noun : "");
  }

  function nameCell(t) {
    const td = el("td", "name");
    if (t.name) {
      td.append(el("span", "task-name", t.name));
    } else {
      td.append(el("span", "task-name unnamed", "(unnamed)"));
    }
    if (t.priority) td.append(el("span", "badge", "p" + t.priority));
    if (t.schedule) {
      const b = el("span", "badge sched", "scheduled run");
      b.title = "schedule " + t.schedule;
      td.append(b);
    }
    if (t.panicked) td.append(el("span", "badge bad", "panic"));
    return td;
  }

  function idCell(id) {
    const td = el("td", "id", id.slice(0, 8));
    td.title = id;
    return td;
  }

  function actionCell(kind, id, label) {
    const td = el("td", "act");
    if (!actions) return td;
    const b = el("button", "btn", label);
    b.type = "button";
    b.dataset.action = kind;
    b.dataset.id = id;
    td.append(b);
    return td;
  }

  // Row builders: each returns a fresh <tr> for an item. Rows are keyed by
  // id and rebuilt only when their content changes, so a button keeps its
  // place while the user clicks it.
  const rowBuilders = {
    running: (t) => [nameCell(t), idCell(t.id), el("td", "num", String(t.attempt || 1)),
      el("td", "num", fmtDur(now() - t.since)), actionCell("cancel", t.id, "Cancel")],
    queued: (t) => [nameCell(t), idCell(t.id), el("td", "num", String(t.attempt + 1)),
      el("td", "num", fmtDur(now() - t.since)), actionCell("cancel", t.id, "Cancel")],
    scheduled: (t) => [nameCell(t), idCell(t.id), el("td", "num", String(t.attempt + 1)),
      el("td", "num", t.due ? (t.due > now() ? "in " + fmtDur(t.due - now()) : "now") : "–"),
      errorCell(t.error), actionCell("cancel", t.id, "Cancel")],
    failed: (t) => [nameCell(t), idCell(t.id), el("td", "num", String(t.attempt)),
      el("td", "num", fmtDur(now() - t.since) + " ago"), errorCell(t.error)],
    schedules: (r) => [nameCell(r), idCell(r.id), el("td", "trigger", r.trigger),
      nextCell(r.next), actionCell("stop", r.id, "Stop")],
  };

  function errorCell(text) {
    const td = el("td", "error", text || "");
    if (text) td.title = text;
    return td;
  }

  function nextCell(ms) {
    const td = el("td", "num", ms ? (ms > now() ? "in " + fmtDur(ms - now()) : "now") : "–");
    if (ms) td.title = fmtTime(ms);
    return td;
  }

  function syncRows(tbody, items, kind) {
    const build = rowBuilders[kind];
    const keep = new Map();
    for (const tr of Array.from(tbody.children)) {
      keep.set(tr.dataset.key, tr);
    }
    const rows = items.map((it, i) => {
      const key = it.id + ":" + (kind === "failed" ? i : "");
      const cells = build(it);
      const sig = cells.map((c) => c.textContent + "\u0000" + (c.title || "")).join("\u0001");
      let tr = keep.get(key);
      if (tr && tr.dataset.sig === sig) {
        keep.delete(key);
        return tr;
      }
      const fresh = el("tr");
      fresh.dataset.key = key;
      fresh.dataset.sig = sig;
      fresh.append(...cells);
      if (tr) {
        // Same task, new content: update the cells in place, keeping a
        // pressed button where it is.
        keep.delete(key);
        const oldCells = Array.from(tr.children);
        cells.forEach((c, j) => {
          const o = oldCells[j];
          if (!o || o.textContent !== c.textContent || o.title !== c.title || o.className !== c.className) {
            if (o) o.replaceWith(c); else tr.append(c);
          }
        });
        tr.dataset.sig = sig;
        return tr;
      }
      return fresh;
    });
    for (const tr of keep.values()) tr.remove();
    let ref = tbody.firstChild;
    for (const tr of rows) {
      if (tr === ref) {
        ref = ref.nextSibling;
      } else {
        tbody.insertBefore(tr, ref);
      }
    }
  }

  function renderList(kind, list, emptyTotal) {
    const sec = $('[data-list="' + kind + '"]');
    const items = list.tasks || list.items;
    syncRows($("tbody", sec), items, kind);
    const total = list.total;
    $('[data-count="' + kind + '"]', sec).textContent = countText(total, items.length);
    const empty = $(".empty", sec);
    if (!empty.dataset.text) empty.dataset.text = empty.textContent;
    if (items.length) {
      empty.hidden = true;
    } else {
      empty.hidden = false;
      empty.textContent = total > 0 && emptyTotal
        ? nf.format(total) + " " + emptyTotal
        : empty.dataset.text;
    }
    sec.classList.toggle("is-empty", !items.length);
  }

  function render(s) {
    lastState = s;
    skew = s.now - Date.now();
    if (document.title !== s.title) document.title = s.title;
    renderStats(s);
    renderRate(s.throughput);
    drawChart(s.throughput);
    const notTracked = "not listed: a list shows the tasks it saw arrive while it had room.";
    renderList("running", s.running, notTracked);
    renderList("queued", s.queued, notTracked);
    renderList("scheduled", s.scheduled, notTracked);
    renderList("failed", s.failed, "failed since the dashboard started; none recently.");
    renderList("schedules", s.schedules, "");
    const notice = $("#notice");
    notice.hidden = s.attached;
    if (!s.attached) notice.textContent = "No queue is attached to this dashboard yet (Dashboard.Attach).";
    $("#mode").textContent = s.actions ? "Actions enabled" : "Read-only";
    $("#updated").textContent = "Updated " + new Date(s.now).toLocaleTimeString();
  }

  // --- actions ---------------------------------------------------------------

  async function act(button) {
    const kind = button.dataset.action;
    const id = button.dataset.id;
    button.disabled = true;
    try {
      const resp = await fetch(kind === "stop" ? "api/stop" : "api/cancel", {
        method: "POST",
        headers: { [TOKEN_HEADER]: token },
        body: new URLSearchParams({ id }),
        credentials: "same-origin",
        cache: "no-store",
      });
      const body = await resp.json().catch(() => ({}));
      if (resp.ok) {
        toast((kind === "stop" ? "Stopped schedule " : "Canceled task ") + id.slice(0, 8));
      } else {
        toast("Could not " + kind + " " + id.slice(0, 8) + ": " + (body.error || resp.status), true);
        button.disabled = false;
      }
    } catch (err) {
      toast("Could not " + kind + ": " + err, true);
      button.disabled = false;
    }
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (b && actions && !b.disabled) act(b);
  });

  // --- task lookup -----------------------------------------------------------

  // The statuses' tones, as the lists use them.
  const statusTone = {
    scheduled: "info", queued: "warn", running: "ok", retrying: "warn",
    succeeded: "ok", failed: "bad", canceled: "muted",
  };
  let lookupSeq = 0; // the latest lookup's number: an older answer is dropped
  let lookupAbort = null;

  function fmtBytes(n) {
    if (n < 1024) return nf.format(n) + " B";
    if (n < 1024 * 1024) return rateFmt.format(n / 1024) + " KiB";
    return rateFmt.format(n / (1024 * 1024)) + " MiB";
  }

  function field(dl, label, value, className) {
    const dd = el("dd", className);
    if (value instanceof Node) dd.append(value); else dd.textContent = value;
    dl.append(el("dt", "", label), dd);
    return dd;
  }

  function timeField(dl, label, rfc3339) {
    if (!rfc3339) return;
    const ms = Date.parse(rfc3339);
    if (Number.isNaN(ms)) {
      field(dl, label, rfc3339);
      return;
    }
    const rel = ms > now() ? "in " + fmtDur(ms - now()) : fmtDur(now() - ms) + " ago";
    field(dl, label, fmtTime(ms) + " (" + rel + ")").title = rfc3339;
  }

  function renderPayload(kind, p) {
    const box = $('[data-payload="' + kind + '"]');
    box.hidden = !p;
    if (!p) return;
    let note = p.base64 ? "base64, " : "";
    note += p.truncated ? "first part of " + fmtBytes(p.size) : fmtBytes(p.size);
    $("h3 .muted", box).textContent = "(" + note + ")";
    $("pre", box).textContent = p.data;
  }

  function renderTask(t) {
    const dl = $("#lookup-fields");
    dl.replaceChildren();
    const badge = el("span", "badge status-badge", t.status);
    badge.dataset.tone = statusTone[t.status] || "muted";
    field(dl, "Status", badge, "lookup-status");
    field(dl, "Kind", t.kind || "(none)", "task-name");
    field(dl, "ID", t.id, "id");
    field(dl, "Attempts", t.attempts + " of " + t.max_attempts);
    if (t.priority) field(dl, "Priority", String(t.priority));
    if (t.key) field(dl, "Key", t.key, "id");
    if (t.schedule) field(dl, "Schedule", t.schedule, "id");
    if (t.holder) field(dl, "Held by", t.holder);
    timeField(dl, "Due", t.run_at);
    timeField(dl, "Created", t.created);
    timeField(dl, "Started", t.started);
    timeField(dl, "Finished", t.finished);
    if (t.error) field(dl, "Error", t.error, "error-text");
    renderPayload("args", t.args);
    renderPayload("result", t.result);
  }

  function lookupMessage(text, bad) {
    const m = $("#lookup-msg");
    m.textContent = text;
    m.dataset.tone = bad ? "bad" : "";
    m.hidden = !text;
  }

  async function lookup(id) {
    const seq = ++lookupSeq;
    if (lookupAbort) lookupAbort.abort();
    const ac = new AbortController();
    lookupAbort = ac;
    $("#lookup-result").hidden = true;
    lookupMessage("Looking up " + id + "…", false);
    let resp;
    let body = {};
    try {
      resp = await fetch("api/task?id=" + encodeURIComponent(id), {
        credentials: "same-origin",
        cache: "no-store",
        signal: ac.signal,
      });
      body = await resp.json().catch(() => ({}));
    } catch (err) {
      if (seq === lookupSeq) lookupMessage("Could not look up " + id + ": " + err, true);
      return;
    }
    if (seq !== lookupSeq) return;
    if (resp.ok) {
      lookupMessage("", false);
      renderTask(body);
      $("#lookup-result").hidden = false;
    } else if (resp.status === 404) {
      lookupMessage("No task " + id + ": " + (body.error || "not found"), true);
    } else {
      lookupMessage("Could not look up " + id + ": " + (body.error || "HTTP " + resp.status), true);
    }
  }

  $("#lookup-form").addEventListener("submit", (ev) => {
    ev.preventDefault(); // the page's policy allows no form submission
    const id = $("#lookup-id").value.trim();
    if (!id) {
      lookupMessage("Type a task id first.", true);
      return;
    }
    lookup(id);
  });

  // --- live updates ----------------------------------------------------------

  function connect() {
    const es = new EventSource("events");
    es.onopen = () => setStatus("live", "Live");
    es.onmessage = (ev) => {
      setStatus("live", "Live");
      render(JSON.parse(ev.data));
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        setStatus("down", "Disconnected");
      } else {
        setStatus("connecting", "Reconnecting…");
      }
    };
  }

  window.addEventListener("resize", () => {
    if (lastState) drawChart(lastState.throughput);
  });

  connect();
})();
