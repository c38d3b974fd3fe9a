// The notifications page's service worker: shows each Web Push as a system notification and
// tells the open pages of this origin what arrived. Registered with scope /static/: a push
// subscription belongs to the registration, which need not control the page that made it.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function readPush(data) {
  if (!data) return {};
  try {
    return data.json();
  } catch {
    return {body: data.text()};
  }
}

self.addEventListener("push", (event) => {
  const message = readPush(event.data);
  event.waitUntil((async () => {
    const pages = await self.clients.matchAll({type: "window", includeUncontrolled: true});
    for (const page of pages) page.postMessage({type: "push", message});
    await self.registration.showNotification(message.title || "Switchboard", {
      body: message.body || "",
      tag: message.notificationId || undefined,
      data: {notificationId: message.notificationId || ""},
    });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow("/admin/notifications"));
});
