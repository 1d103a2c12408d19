// BAM Chat push demo service worker: shows each push as a notification and
// passes it to open demo pages.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {title: "BAM Chat", body: event.data ? event.data.text() : ""};
  }
  const title = data.senderName ? `${data.senderName} in ${data.title}` : data.title || "BAM Chat";
  event.waitUntil(Promise.all([
    self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.bamId ? `bam-${data.bamId}` : "bamchat",
      data,
    }),
    self.clients.matchAll({type: "window"}).then((clients) => {
      clients.forEach((client) => client.postMessage({push: data}));
    }),
  ]));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow("/push/demo"));
});
