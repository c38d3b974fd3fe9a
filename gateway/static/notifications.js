// Notifications admin page: recent notifications (re-read every 2 s), a test-send form, and
// what the local providers received. All reads go through the gateway's JSON API.
"use strict";

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
// State-changing calls carry the session's CSRF token (the gateway refuses them without it).
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const when = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");

async function getJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok || body.success === false) {
    const error = body.error || {};
    throw new Error(error.message || `HTTP ${response.status}`);
  }
  return body.data;
}

async function loadRecent() {
  const rows = await getJson("/api/notifications?limit=50");
  $("#recent").innerHTML = rows.length
    ? rows.map((n) => `<tr data-id="${esc(n.notificationId)}">
        <td>${when(n.createdAt)}</td><td>${esc(n.channel)}</td><td>${esc(n.to)}</td>
        <td class="state state-${esc(n.state)}">${esc(n.state)}</td>
        <td class="num">${n.attempts.length}</td><td>${esc(n.lastError)}</td></tr>`).join("")
    : `<tr><td colspan="6" class="empty">No notifications yet.</td></tr>`;
}

function sinkList(title, items, line) {
  const shown = items.slice(-10).reverse();
  return `<div class="sink" data-sink="${esc(title)}"><h3>${esc(title)} <span class="count">${items.length}</span></h3>
    ${shown.length ? `<ul>${shown.map((i) => `<li>${esc(line(i))}</li>`).join("")}</ul>` : `<p class="empty">nothing yet</p>`}</div>`;
}

async function loadSinks() {
  let data;
  try {
    data = await getJson("/api/notifications-local-sinks");
  } catch (error) {
    $("#sinks").innerHTML = `<p class="empty">${esc(error.message)}</p>`;
    return;
  }
  $("#sinks").innerHTML = [
    sinkList("email", data.email, (m) => `${m.to.join(", ")}: ${m.subject}`),
    sinkList("telegram", data.telegram, (m) => `${m.chatId}: ${m.text}`),
    sinkList("browser", data.browser, (m) => `${m.payload.title || ""} ${m.payload.body || ""}`),
    sinkList("sms", data.sms, (m) => `${m.to}: ${m.body}`),
  ].join("");
}

async function refresh() {
  try {
    await Promise.all([loadRecent(), loadSinks()]);
    $("#conn").dataset.state = "live";
    $("#conn").textContent = "live";
  } catch (error) {
    $("#conn").dataset.state = "down";
    $("#conn").textContent = `gateway unreachable: ${error.message}`;
  }
}

async function send(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {channel: form.get("channel"), to: form.get("to"), priority: form.get("priority")};
  for (const key of ["subject", "text", "template"]) if (form.get(key)) body[key] = form.get(key);
  const result = $("#result");
  try {
    if (form.get("data")) body.data = JSON.parse(form.get("data"));
    const data = await getJson("/api/notifications", {
      method: "POST", headers: {"content-type": "application/json", "X-CSRF-Token": CSRF}, body: JSON.stringify(body),
    });
    result.className = "ok";
    result.textContent = `queued ${data.notificationIds.join(", ")}`;
  } catch (error) {
    result.className = "error";
    result.textContent = error.message;
  }
  await refresh();
}

// Web Push: the service worker (static/notifications-sw.js) holds the subscription; the gateway
// stores it for the user named in the form, and pushes to that user arrive here.
const b64urlBytes = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

async function activeWorker(registration) {
  const worker = registration.installing || registration.waiting || registration.active;
  if (worker.state === "activated") return;
  await new Promise((resolve) => worker.addEventListener("statechange", () => worker.state === "activated" && resolve()));
}

async function subscribePush(event) {
  event.preventDefault();
  const state = $("#push-state");
  const userId = new FormData(event.target).get("userId");
  try {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) throw new Error("this browser has no Web Push");
    const registration = await navigator.serviceWorker.register("/static/notifications-sw.js", {scope: "/static/"});
    await activeWorker(registration);
    if ((await Notification.requestPermission()) !== "granted") throw new Error("notifications are blocked for this page");
    const {publicKey} = await getJson("/api/push/vapid-public-key");
    const subscription = (await registration.pushManager.getSubscription())
      || (await registration.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: b64urlBytes(publicKey)}));
    const saved = await getJson("/api/push/subscriptions", {
      method: "POST", headers: {"content-type": "application/json", "X-CSRF-Token": CSRF},
      body: JSON.stringify({userId, ...subscription.toJSON()}),
    });
    state.className = "ok";
    state.textContent = `subscribed as ${userId} (${saved.subscriptionId})`;
  } catch (error) {
    state.className = "error";
    state.textContent = error.message;
  }
}

function showPush(event) {
  if (event.data?.type !== "push") return;
  const {title, body} = event.data.message;
  $("#push-last").className = "";
  $("#push-last").textContent = [title, body].filter(Boolean).join(": ");
}

document.addEventListener("DOMContentLoaded", () => {
  $("#send").addEventListener("submit", send);
  $("#push").addEventListener("submit", subscribePush);
  navigator.serviceWorker?.addEventListener("message", showPush);
  refresh();
  setInterval(refresh, 2000);
});
