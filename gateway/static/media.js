// /admin/media: upload by drag-and-drop or file picker, the recent media as cards, kept live by
// /api/admin/media/events (SSE). A state change re-reads that one media; nothing polls.
"use strict";

const API = "/api/admin/media";
const cards = new Map(); // mediaId -> card element

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function formatBytes(n) {
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} B`;
}

function render(media) {
  // Replies to overlapping refreshes can arrive out of order: an older state arriving last is not drawn.
  const shown = cards.get(media.mediaId);
  if (shown && Number(shown.dataset.updatedAt) > media.updatedAt) return;
  const thumb = media.variants.find((v) => v.name === "thumb") || media.variants[0];
  const picture = thumb && media.state !== "deleted"
    ? el("img", { class: "thumb", src: thumb.url, alt: media.filename, loading: "lazy" })
    : el("div", { class: "thumb none" }, media.state === "deleted" ? "deleted" : media.state + "…");
  const variants = el("div", { class: "variants" },
    ...media.variants.map((v) => el("a", { href: v.url, target: "_blank", "data-variant": v.name },
      `${v.name} ${v.width}×${v.height} · ${formatBytes(v.sizeBytes)}`)));
  const actions = el("div", { class: "actions" });
  if (media.state === "ready") actions.append(watermarkForm(media.mediaId));
  if (media.state !== "deleted") {
    actions.append(el("button", { type: "button", class: "delete", onclick: () => remove(media.mediaId) }, "Delete"));
  }
  const card = el("article", {
    class: "mcard", "data-media": media.mediaId, "data-state": media.state, "data-updated-at": media.updatedAt,
  },
    picture,
    el("div", { class: "name", title: media.filename }, media.filename || media.mediaId),
    el("div", { class: "state" }, media.state),
    el("div", { class: "meta" }, `${media.width}×${media.height} · ${formatBytes(media.sizeBytes)}` +
      (media.ownerId ? ` · ${media.ownerId}` : "")),
    variants,
    media.error ? el("div", { class: "error" }, media.error) : "",
    actions);
  const old = cards.get(media.mediaId);
  if (old) old.replaceWith(card);
  else {
    const grid = $("media");
    grid.querySelector(".empty")?.remove();
    grid.prepend(card);
  }
  cards.set(media.mediaId, card);
  $("media-count").textContent = String(cards.size);
}

// State-changing calls carry the session's CSRF token (the gateway refuses them without it).
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

async function fetchJson(url, options = {}) {
  if (options.method && options.method !== "GET") options = { ...options, headers: { ...options.headers, "X-CSRF-Token": CSRF } };
  const response = await fetch(url, options);
  const body = await response.json();
  if (!body.success) throw new Error(body.error?.message || `HTTP ${response.status}`);
  return body;
}

async function refresh(mediaId) {
  try {
    render((await fetchJson(`${API}/${mediaId}`)).data);
  } catch (error) {
    console.warn("media refresh failed", mediaId, error);
  }
}

async function loadRecent() {
  const body = await fetchJson(`${API}?pageSize=30`);
  if (body.data.length === 0) $("media").replaceChildren(el("p", { class: "empty" }, "No media yet."));
  for (const media of body.data.reverse()) render(media);
}

const POSITIONS = ["bottom-right", "bottom-left", "top-right", "top-left", "center", "tile"];

// Text watermark on every variant; the outputs appear beside the plain ones as <name>.watermarked.
function watermarkForm(mediaId) {
  const text = el("input", { type: "text", class: "wm-text", placeholder: "Watermark text", maxLength: 200 });
  const position = el("select", { class: "wm-position" }, ...POSITIONS.map((p) => el("option", { value: p }, p)));
  const apply = el("button", { type: "button", class: "watermark" }, "Watermark");
  apply.onclick = () => watermark(mediaId, text.value, position.value);
  return el("span", { class: "wm" }, text, position, apply);
}

async function watermark(mediaId, text, position) {
  const status = $("upload-status");
  try {
    const body = await fetchJson(`${API}/${mediaId}/watermark`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, position }),
    });
    status.className = "status";
    status.textContent = `Watermark queued (${body.data.jobId})`;
  } catch (error) {
    status.className = "status error";
    status.textContent = `Watermark refused: ${error.message}`;
  }
}

async function remove(mediaId) {
  try {
    await fetchJson(`${API}/${mediaId}`, { method: "DELETE" });
  } catch (error) {
    $("upload-status").textContent = `Delete failed: ${error.message}`;
  }
  await refresh(mediaId);
}

async function upload(files) {
  const status = $("upload-status");
  for (const file of files) {
    const form = new FormData();
    // The fields go before the file: the gateway streams the file on as it arrives.
    form.append("entityType", $("entity-type").value);
    form.append("ownerId", $("owner").value);
    form.append("keepMetadata", $("keep-metadata").checked ? "true" : "false");
    form.append("file", file, file.name);
    status.className = "status";
    status.textContent = `Uploading ${file.name}…`;
    try {
      const body = await fetchJson(`${API}/upload-async`, { method: "POST", body: form });
      status.textContent = `${file.name}: ${body.data.state}`;
      await refresh(body.data.mediaId);
    } catch (error) {
      status.className = "status error";
      status.textContent = `${file.name}: ${error.message}`;
    }
  }
}

function follow() {
  const conn = $("conn");
  const source = new EventSource(`${API}/events`);
  source.addEventListener("ready", () => {
    conn.dataset.state = "live";
    conn.textContent = "live";
  });
  source.addEventListener("media", (event) => refresh(JSON.parse(event.data).mediaId));
  source.onerror = () => {
    conn.dataset.state = "reconnecting";
    conn.textContent = "reconnecting…";
  };
}

function wireDrop() {
  const zone = $("upload");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    upload([...event.dataTransfer.files]);
  });
  $("file").addEventListener("change", (event) => {
    upload([...event.target.files]);
    event.target.value = "";
  });
}

wireDrop();
follow();
loadRecent().catch((error) => {
  $("media").replaceChildren(el("p", { class: "empty error" }, `Cannot list media: ${error.message}`));
});
