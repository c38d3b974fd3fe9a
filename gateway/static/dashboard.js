// Live dashboard: follows /api/queue-status/stream (SSE). The first `snapshot` event replaces the
// whole picture, each `changes` event patches it. Durations tick locally every second; the
// server is never polled. EventSource reconnects by itself and the stream restarts with a snapshot.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const board = $("board");
  const state = { operators: new Map(), queues: new Map(), channels: new Map(), meta: {} };
  let clockOffset = 0; // server epoch ms minus local epoch ms
  let renderQueued = false;

  const now = () => Date.now() + clockOffset; // epoch ms, as every time in the API
  const opKey = (queue, member) => `${queue}\u0000${member}`;
  const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const label = (s) => s.replace(/_/g, " ");
  const count = (n, word) => `<span><b>${n}</b>${word}${n === 1 ? "" : "s"}</span>`;
  function duration(since) {
    if (!since) return "–";
    const s = Math.max(0, Math.floor((now() - since) / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }
  const since = (t) => `<span class="dur" data-since="${t}">${duration(t)}</span>`;

  function applySnapshot(snap) {
    clockOffset = snap.asOf ? snap.asOf - Date.now() : 0;
    state.operators = new Map(snap.operators.map((o) => [opKey(o.queueName, o.memberId), o]));
    state.queues = new Map(snap.queues.map((q) => [q.name, q]));
    state.channels = new Map(snap.channels.map((c) => [c.uniqueId, c]));
    state.meta = { source: snap.source, stale: snap.stale, revision: snap.revision };
  }

  function applyChanges(set) {
    if (set.replaceAll) ["operators", "queues", "channels"].forEach((k) => state[k].clear());
    for (const c of set.changes) {
      if (c.kind === "operatorUpserted") state.operators.set(opKey(c.operator.queueName, c.operator.memberId), c.operator);
      else if (c.kind === "operatorRemoved") state.operators.delete(opKey(c.queueName, c.memberId));
      else if (c.kind === "queueUpserted") state.queues.set(c.queue.name, c.queue);
      else if (c.kind === "queueRemoved") state.queues.delete(c.name);
      else if (c.kind === "channelUpserted") state.channels.set(c.channel.uniqueId, c.channel);
      else if (c.kind === "channelRemoved") state.channels.delete(c.uniqueId);
    }
    state.meta.revision = set.revision;
  }

  function operatorRow(o) {
    const status = o.paused ? "paused" : o.status;
    const extra = [o.paused ? `<span class="paused-reason">paused${o.pausedReason ? ": " + esc(o.pausedReason) : ""}</span>` : "",
      o.paused && o.status !== "idle" ? esc(label(o.status)) : "",
      `${o.callsTaken} calls`, o.penalty ? `penalty ${o.penalty}` : ""].filter(Boolean).join(" · ");
    return `<li data-member-id="${esc(o.memberId)}" data-status="${esc(status)}">
      <span class="who">${esc(o.memberName || o.memberId)}<span class="iface">${esc(o.memberId)}</span></span>
      <span class="pill s-${esc(status)}">${esc(label(status))}</span><span class="extra">${extra}</span></li>`;
  }

  function queueCard(q, ops) {
    const callers = [...q.callers].sort((a, b) => a.position - b.position);
    const oldest = callers.reduce((t, c) => (c.joinedAt && (!t || c.joinedAt < t) ? c.joinedAt : t), 0);
    const free = ops.filter((o) => !o.paused && o.status === "idle").length;
    return `<article class="queue" data-queue="${esc(q.name)}">
      <header><h3>${esc(q.name)}</h3><span class="strategy">${esc(q.strategy)}</span></header>
      <div class="stats"><span class="${q.waiting ? "alert" : ""}"><b>${q.waiting}</b>waiting</span>
        <span>longest <b>${oldest ? since(oldest) : "–"}</b></span><span><b>${free}/${ops.length}</b>free</span>
        <span><b>${q.completed}</b>done</span><span><b>${q.abandoned}</b>abandoned</span></div>
      <ul class="callers">${callers.map((c) => `<li><span>${c.position}. ${esc(c.callerIdName || c.callerIdNum || c.channel)}
        ${c.callerIdName && c.callerIdNum ? `<span class="iface">${esc(c.callerIdNum)}</span>` : ""}</span>${since(c.joinedAt)}</li>`).join("")}</ul>
      <ul class="ops">${ops.map(operatorRow).join("") || '<li class="empty">no operators</li>'}</ul></article>`;
  }

  // One row per call: channels sharing a linkedId are the legs of one call.
  function calls() {
    const byLink = new Map();
    for (const c of state.channels.values()) {
      const key = c.linkedId || c.uniqueId;
      if (!byLink.has(key)) byLink.set(key, []);
      byLink.get(key).push(c);
    }
    return [...byLink.values()].map((legs) => legs.sort((a, b) => a.startedAt - b.startedAt))
      .sort((a, b) => a[0].startedAt - b[0].startedAt);
  }

  function render() {
    renderQueued = false;
    const byQueue = new Map([...state.queues.keys()].map((name) => [name, []]));
    for (const o of state.operators.values()) {
      if (!byQueue.has(o.queueName)) byQueue.set(o.queueName, []);
      byQueue.get(o.queueName).push(o);
    }
    const names = [...byQueue.keys()].sort();
    $("queues").innerHTML = names.map((n) => queueCard(state.queues.get(n) || { name: n, strategy: "", waiting: 0,
      callers: [], completed: 0, abandoned: 0 }, byQueue.get(n).sort((a, b) => (a.memberName || a.memberId)
      .localeCompare(b.memberName || b.memberId)))).join("") || '<p class="empty">No queues.</p>';
    const rows = calls();
    $("calls").innerHTML = rows.map((legs) => {
      const first = legs[0], up = legs.find((l) => l.state === "Up") || first;
      const peer = legs.map((l) => l.bridgedTo).find(Boolean) || (legs[1] && legs[1].channelName) || "";
      return `<tr data-linked-id="${esc(first.linkedId)}"><td>${esc(first.callerIdName || first.callerIdNum || "—")}</td>
        <td>${esc(first.channelName)}</td><td>${esc(up.state)}</td><td>${esc(peer)}</td>
        <td class="num">${since(first.startedAt)}</td></tr>`;
    }).join("") || '<tr><td colspan="5" class="empty">No active calls.</td></tr>';
    $("call-count").textContent = rows.length ? `(${rows.length})` : "";
    const ops = [...state.operators.values()], members = new Set(ops.map((o) => o.memberId));
    const waiting = [...state.queues.values()].reduce((t, q) => t + q.waiting, 0);
    const onCall = new Set(ops.filter((o) => o.inCall).map((o) => o.memberId)).size;
    const paused = new Set(ops.filter((o) => o.paused).map((o) => o.memberId)).size;
    $("totals").innerHTML = `${count(members.size, "operator")}<span><b>${onCall}</b>on call</span>
      <span><b>${paused}</b>paused</span><span><b>${waiting}</b>waiting</span>${count(rows.length, "call")}`;
    $("source").textContent = `source: ${state.meta.source || "?"} · revision ${state.meta.revision ?? "?"}`;
  }

  function scheduleRender() {
    if (!renderQueued) { renderQueued = true; requestAnimationFrame(render); }
  }

  function setConn(kind, text) { const el = $("conn"); el.dataset.state = kind; el.textContent = text; }

  function connect() {
    const source = new EventSource(board.dataset.stream);
    source.addEventListener("snapshot", (e) => {
      applySnapshot(JSON.parse(e.data));
      setConn(state.meta.stale ? "stale" : "live", state.meta.stale ? "live · data stale" : "live");
      scheduleRender();
    });
    source.addEventListener("changes", (e) => { applyChanges(JSON.parse(e.data)); scheduleRender(); });
    source.addEventListener("error", (e) => {
      if (e.data) setConn("reconnecting", JSON.parse(e.data).error.message);
      else if (source.readyState !== EventSource.OPEN) setConn("reconnecting", "reconnecting…");
      // A non-200 answer (backend down → 503) closes an EventSource for good: retry ourselves.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
    });
  }

  setInterval(() => {
    for (const el of document.querySelectorAll("[data-since]")) el.textContent = duration(Number(el.dataset.since));
  }, 1000);
  connect();
})();
