// Queue dashboard: reads /api/queues… and follows /api/queues/events (SSE). On a job event only the
// affected queue's counts are re-read and, when that queue is on screen, its visible page of jobs
// (bursts coalesced); progress events patch the row in place. No timer polls, the page never reloads.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const board = $("qboard");
  const STATES = ["waiting", "active", "delayed", "completed", "failed"];
  const PAGE_SIZE = 20;
  const ui = { queues: new Map(), queue: board.dataset.queue || "", state: board.dataset.state || "waiting",
    page: 1, total: 0, jobs: [], open: "" };
  const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const enc = encodeURIComponent;
  const pretty = (v) => JSON.stringify(v, null, 2);

  function ago(ms) {
    if (!ms) return "–";
    const s = Math.round((Date.now() - ms) / 1000);
    if (s < 0) return `in ${fmtSpan(-s)}`;
    return s < 2 ? "just now" : `${fmtSpan(s)} ago`;
  }
  function fmtSpan(s) {
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  }
  const clock = (ms) => (ms ? new Date(ms).toLocaleString([], { dateStyle: "short", timeStyle: "medium" }) : "–");

  let toastTimer = 0;
  function toast(message, kind = "info") {
    const el = $("toast");
    el.textContent = message;
    el.dataset.kind = kind;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 6000 : 2500);
  }

  // State-changing calls carry the session's CSRF token (the gateway refuses them without it).
  const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function api(path, options = {}) {
    const headers = { "Content-Type": "application/json" };
    if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = CSRF;
    const init = { ...options, headers };
    const response = await fetch(path, init);
    const body = await response.json().catch(() => ({ success: false, error: { message: response.statusText } }));
    if (!body.success) throw new Error(body.error?.message || `HTTP ${response.status}`);
    return body;
  }

  // ---- queues ------------------------------------------------------------------------------
  function chips(counts) {
    return STATES.map((s) => `<span class="chip c-${s}${s === "failed" && counts[s] ? " hot" : ""}" data-count="${s}">
      ${s}<b>${counts[s]}</b></span>`).join("");
  }

  function queueCard(q) {
    const current = q.name === ui.queue;
    const tags = [q.isPaused ? '<span class="tag">paused</span>' : "",
      q.workers ? "" : '<span class="tag warn">no workers</span>', q.degraded ? '<span class="tag warn">spooling</span>' : ""];
    return `<button type="button" class="qcard" data-queue="${esc(q.name)}" data-paused="${q.isPaused}" aria-current="${current}">
      <span class="row"><h3>${esc(q.name)}</h3>${tags.join("")}<span class="meta">${q.workers} worker${q.workers === 1 ? "" : "s"}</span></span>
      <span class="chips">${chips(q.counts)}</span></button>`;
  }

  function renderQueues() {
    const list = [...ui.queues.values()];
    $("queue-count").textContent = list.length ? `(${list.length})` : "";
    $("queues").innerHTML = list.map(queueCard).join("") || '<p class="empty">No queue declared yet: start a worker.</p>';
    const totals = Object.fromEntries(STATES.map((s) => [s, list.reduce((n, q) => n + q.counts[s], 0)]));
    $("totals").innerHTML = STATES.map((s) => `<span><b>${totals[s]}</b> ${s}</span>`).join("");
  }

  function renderHead() {
    const q = ui.queues.get(ui.queue);
    if (!q) { $("queue-head").innerHTML = '<p class="empty">Pick a queue.</p>'; return; }
    const rate = q.rateLimit ? `${q.rateLimit.max} / ${q.rateLimit.periodMs} ms` : "none";
    $("queue-head").innerHTML = `<h2>${esc(q.name)}</h2>${q.isPaused ? '<span class="tag">paused</span>' : ""}
      <span class="facts"><span>concurrency <b>${q.concurrency}</b></span><span>rate limit <b>${esc(rate)}</b></span>
        <span>workers <b>${q.workers}</b></span><span>jobs <b>${esc(q.jobNames.join(", "))}</b></span></span>
      <span class="tools">
        <button type="button" class="btn ${q.isPaused ? "primary" : ""}" data-action="${q.isPaused ? "resume" : "pause"}" id="pause-toggle">${q.isPaused ? "Resume" : "Pause"}</button>
        <button type="button" class="btn" data-action="retry-failed" ${q.counts.failed ? "" : "disabled"}>Retry all failed</button>
        <select id="clean-state" aria-label="State to clean">${["completed", "failed", "delayed", "waiting"].map((s) =>
          `<option value="${s}"${s === (ui.state === "failed" ? "failed" : "completed") ? " selected" : ""}>${s}</option>`).join("")}</select>
        <label class="grace">older than <input type="number" id="clean-grace" min="0" value="0" aria-label="Older than (seconds)"> s</label>
        <button type="button" class="btn danger" data-action="clean">Clean</button></span>`;
  }

  function renderTabs() {
    const q = ui.queues.get(ui.queue);
    for (const tab of $("tabs").querySelectorAll("[data-tab]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === ui.state));
      tab.querySelector(".n").textContent = q ? q.counts[tab.dataset.tab] : "";
    }
  }

  // Replies can come back in another order than their requests (a slow ListJobs or GetQueue under
  // load): a queue's counts are taken only from a reply to a request sent after the one shown, and
  // jobs only from the latest list asked for. Otherwise an older reply landing last shows stale
  // rows or counts, and with no further event they stay (a row the user waits for never appears).
  let sent = 0;
  const shownAt = new Map();  // queue name → number of the request whose reply it shows
  function newest(q, at) {
    if ((shownAt.get(q.name) ?? -1) > at) return ui.queues.get(q.name) ?? q;
    shownAt.set(q.name, at);
    return q;
  }
  function takeQueue(q, at) { ui.queues.set(q.name, newest(q, at)); }

  async function loadQueues() {
    const at = ++sent;
    const body = await api("/api/queues");
    ui.queues = new Map(body.data.map((q) => [q.name, newest(q, at)]));
    if (!ui.queues.has(ui.queue)) ui.queue = body.data[0]?.name || "";
    renderQueues(); renderHead(); renderTabs();
  }

  async function refreshQueue(name) {
    const at = ++sent;
    try {
      const body = await api(`/api/queues/${enc(name)}`);
      takeQueue(body.data, at);
    } catch (error) { return; }
    renderQueues();
    if (name === ui.queue) { renderHead(); renderTabs(); }
  }

  // ---- jobs ----------------------------------------------------------------------------------
  function progressCell(job) {
    const p = job.progress;
    if (p === null || p === undefined) return job.state === "completed" ? '<span class="ptext">done</span>' : "";
    const pct = typeof p === "number" ? Math.max(0, Math.min(100, p)) : null;
    if (pct === null) return `<span class="ptext">${esc(JSON.stringify(p))}</span>`;
    // A <progress> element, not a styled width: the page's CSP allows no inline styles.
    return `<span class="ptext">${pct}%</span><progress class="bar ${pct >= 100 ? "done" : ""}" max="100" value="${pct}"></progress>`;
  }

  function whenCell(job) {
    if (job.state === "delayed") return `due ${ago(job.runAt)}`;
    if (job.finishedAt) return `finished ${ago(job.finishedAt)}`;
    if (job.startedAt) return `started ${ago(job.startedAt)}`;
    return `enqueued ${ago(job.enqueuedAt)}`;
  }

  function actions(job) {
    const b = (action, text, cls = "") => `<button type="button" class="btn ${cls}" data-action="${action}">${text}</button>`;
    return [job.state === "failed" || job.state === "completed" ? b("retry", "Retry", job.state === "failed" ? "primary" : "") : "",
      job.state === "delayed" ? b("promote", "Promote") : "", job.state !== "active" ? b("remove", "Remove", "danger") : ""].join("");
  }

  function jobRow(job) {
    const last = job.errors[job.errors.length - 1];
    return `<tr data-job-id="${esc(job.jobId)}" data-state="${job.state}" aria-selected="${job.jobId === ui.open}">
      <td><span class="jid">${esc(job.jobId)}</span><span class="jname">${esc(job.name)}</span>
        ${job.state === "failed" && last ? `<span class="err-line">${esc(last.type)}: ${esc(last.message)}</span>` : ""}</td>
      <td class="num">${job.priority}</td><td class="num">${job.attempts} / ${job.maxAttempts}</td>
      <td class="progress">${progressCell(job)}</td><td class="when">${whenCell(job)}</td><td class="act">${actions(job)}</td></tr>`;
  }

  function renderJobs(previous = new Set()) {
    $("jobs").innerHTML = ui.jobs.map(jobRow).join("") ||
      `<tr class="none"><td colspan="6" class="empty">No ${esc(ui.state)} jobs.</td></tr>`;
    for (const job of ui.jobs) {
      if (previous.size && !previous.has(job.jobId)) $("jobs").querySelector(`tr[data-job-id="${CSS.escape(job.jobId)}"]`)?.classList.add("flash");
    }
    const pages = Math.max(1, Math.ceil(ui.total / PAGE_SIZE));
    $("pager").innerHTML = `<span>${ui.total} ${esc(ui.state)} · page ${ui.page} of ${pages}</span>
      <button type="button" class="btn" data-page="${ui.page - 1}" ${ui.page > 1 ? "" : "disabled"}>‹ Prev</button>
      <button type="button" class="btn" data-page="${ui.page + 1}" ${ui.page < pages ? "" : "disabled"}>Next ›</button>`;
  }

  // `live`: a refresh after events, where rows that just arrived are flashed.
  let jobsAsked = 0;
  async function loadJobs(live = false) {
    const at = ++jobsAsked;
    if (!ui.queue) { ui.jobs = []; ui.total = 0; renderJobs(); return; }
    const before = live ? new Set(ui.jobs.map((j) => j.jobId)) : new Set();
    const body = await api(`/api/queues/${enc(ui.queue)}/jobs?state=${ui.state}&page=${ui.page}&pageSize=${PAGE_SIZE}`);
    if (at !== jobsAsked) return;  // a later list (another tab, page or event) was asked for: it is the one to show
    if (!body.data.length && ui.page > 1 && body.meta.page.total) { ui.page = Math.ceil(body.meta.page.total / PAGE_SIZE); return loadJobs(live); }
    ui.jobs = body.data;
    ui.total = body.meta.page.total;
    renderJobs(before);
  }

  // ---- job detail --------------------------------------------------------------------------
  function renderDetail(job) {
    const panel = $("detail");
    panel.hidden = false;
    panel.dataset.jobId = job.jobId;
    const fact = (label, value) => `<span>${label}<b>${value}</b></span>`;
    const errors = job.errors.slice().reverse().map((e) => `<details${e === job.errors[job.errors.length - 1] ? " open" : ""}>
      <summary>attempt ${e.attempt} · <span class="t">${esc(e.type || "Error")}</span>: ${esc(e.message)} · ${esc(clock(e.failedAt))}</summary>
      <pre>${esc(e.traceback)}</pre></details>`).join("");
    panel.innerHTML = `<header><h3 class="jid">${esc(job.jobId)}</h3><span class="state st-${job.state}">${job.state}</span>
        <span class="jname">${esc(job.name)} · ${esc(job.queue)}</span><span class="tools">${actions(job)}
        <button type="button" class="btn" data-action="close">Close</button></span></header>
      <div class="grid">${fact("priority", job.priority)}${fact("attempts", `${job.attempts} / ${job.maxAttempts}`)}
        ${fact("enqueued", clock(job.enqueuedAt))}${fact("started", clock(job.startedAt))}${fact("finished", clock(job.finishedAt))}
        ${job.runAt ? fact("due", clock(job.runAt)) : ""}</div>
      <h4>Progress</h4><div class="progress">${progressCell(job) || '<span class="ptext">none reported</span>'}</div>
      <h4>Data</h4><pre class="data">${esc(pretty(job.data))}</pre>
      ${job.result !== null ? `<h4>Result</h4><pre class="result">${esc(pretty(job.result))}</pre>` : ""}
      <h4>Errors (${job.errors.length})</h4><div class="errors">${errors || '<p class="empty">No errors.</p>'}</div>`;
  }

  let detailAsked = 0;
  async function loadDetail(jobId) {
    const at = ++detailAsked;
    try {
      const body = await api(`/api/queues/${enc(ui.queue)}/jobs/${enc(jobId)}`);
      if (at !== detailAsked) return;  // a later read of a job (this one or another) is the one to show
      ui.open = jobId;
      renderDetail(body.data);
    } catch (error) {
      if (at === detailAsked && ui.open === jobId) closeDetail();
    }
    for (const row of $("jobs").querySelectorAll("tr[data-job-id]")) row.setAttribute("aria-selected", String(row.dataset.jobId === ui.open));
  }

  function closeDetail() { detailAsked++; ui.open = ""; $("detail").hidden = true; $("detail").innerHTML = ""; }

  // ---- actions -------------------------------------------------------------------------------
  async function run(action, jobId) {
    const q = enc(ui.queue);
    const post = (path, body) => api(path, { method: "POST", body: body ? JSON.stringify(body) : undefined });
    if (["retry", "remove", "promote"].includes(action)) {
      if (action === "remove" && !confirm(`Remove job ${jobId}?`)) return;
      await post(`/api/queues/${q}/jobs/${enc(jobId)}/${action}`);
      toast(`${action === "retry" ? "Retrying" : action === "remove" ? "Removed" : "Promoted"} ${jobId}`);
      if (action === "remove" && ui.open === jobId) closeDetail();
    } else if (action === "pause" || action === "resume") {
      const at = ++sent;
      const body = await post(`/api/queues/${q}/${action}`);
      takeQueue(body.data, at);
      toast(`${ui.queue} ${action === "pause" ? "paused" : "resumed"}`);
    } else if (action === "retry-failed") {
      const body = await post(`/api/queues/${q}/retry-failed`);
      toast(`Retrying ${body.data.retried} failed jobs`);
    } else if (action === "clean") {
      const state = $("clean-state").value;
      const graceMs = Math.max(0, Number($("clean-grace").value || 0)) * 1000;
      if (!confirm(`Remove every ${state} job older than ${graceMs / 1000}s from ${ui.queue}?`)) return;
      const body = await post(`/api/queues/${q}/clean`, { state, graceMs });
      toast(`Removed ${body.data.removed} ${state} jobs`);
    }
    await Promise.all([refreshQueue(ui.queue), loadJobs()]);
    if (ui.open && ui.open === jobId && action !== "remove") await loadDetail(jobId);
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("button, tr[data-job-id]");
    if (!target) return;
    const jobId = target.closest("[data-job-id]")?.dataset.jobId;
    if (target.dataset.action === "close") return closeDetail();
    if (target.dataset.action) {
      event.stopPropagation();
      run(target.dataset.action, jobId).catch((error) => toast(error.message, "error"));
    } else if (target.dataset.queue) {
      select(target.dataset.queue, ui.state);
    } else if (target.dataset.tab) {
      select(ui.queue, target.dataset.tab);
    } else if (target.dataset.page) {
      ui.page = Number(target.dataset.page);
      loadJobs().catch((error) => toast(error.message, "error"));
    } else if (target.matches("tr[data-job-id]")) {
      loadDetail(target.dataset.jobId);
    }
  });

  function select(queue, state) {
    const changedQueue = queue !== ui.queue;
    Object.assign(ui, { queue, state, page: 1 });
    if (changedQueue) closeDetail();
    history.replaceState(null, "", `/admin/queues/${enc(queue)}?state=${state}`);
    renderQueues(); renderHead(); renderTabs();
    loadJobs().catch((error) => toast(error.message, "error"));
  }

  // ---- live updates --------------------------------------------------------------------------
  const dirty = new Set();
  let flushTimer = 0;
  function onJobEvent(e) {
    if (e.event === "progress" && e.queue === ui.queue) {
      const job = ui.jobs.find((j) => j.jobId === e.jobId);
      if (job) {
        job.progress = e.detail?.progress ?? null;
        const cell = $("jobs").querySelector(`tr[data-job-id="${CSS.escape(e.jobId)}"] td.progress`);
        if (cell) cell.innerHTML = progressCell(job);
      }
      if (ui.open === e.jobId) { const p = $("detail").querySelector(".progress"); if (p && job) p.innerHTML = progressCell(job); }
      return;
    }
    dirty.add(e.queue);
    if (ui.open === e.jobId) dirty.add(`job:${e.jobId}`);
    if (!flushTimer) flushTimer = setTimeout(flush, 120);
  }

  async function flush() {
    flushTimer = 0;
    const items = [...dirty];
    dirty.clear();
    const work = items.filter((k) => !k.startsWith("job:")).map((name) => ui.queues.has(name) ? refreshQueue(name) : loadQueues());
    if (items.includes(ui.queue)) work.push(loadJobs(true));
    if (ui.open && items.includes(`job:${ui.open}`)) work.push(loadDetail(ui.open));
    await Promise.all(work).catch((error) => toast(error.message, "error"));
  }

  function connect() {
    const conn = $("conn");
    const source = new EventSource(board.dataset.events);
    source.addEventListener("ready", () => {
      conn.dataset.state = "live"; conn.textContent = "live";
      // (Re)connected: anything missed while away is re-read once.
      loadQueues().then(loadJobs).then(() => ui.open && loadDetail(ui.open)).catch((error) => toast(error.message, "error"));
    });
    source.addEventListener("job", (m) => onJobEvent(JSON.parse(m.data)));
    source.addEventListener("error", () => { conn.dataset.state = "reconnecting"; conn.textContent = "reconnecting…"; });
  }

  renderTabs();
  connect();
})();
