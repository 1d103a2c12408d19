// The connection phases: `idle` (N clients connect + join and are held; server
// RSS and CPU per client) and `storm` (N at once; time until every join is acked).
import { closeAll, connectAll } from "./clients.mjs";
import { cfg, log, now, patienceAt, sleep } from "./config.mjs";
import { mark, quantiles, selfCpuS, serverCpuS, serverRssKb, tcpListenDrops, waitQuiet } from "./measure.mjs";

// ---- idle and storm --------------------------------------------------------------------
// What both phases report of their connection attempts.
function attempts(clients, conn) {
  return { clients: clients.length, failed: conn.failed, retries: conn.retries, errors: conn.errors };
}

export async function runIdle() {
  const clients = cfg.clients;
  // Warm the server's connection path once, so one-time costs are not per-client.
  const warm = await connectAll(clients.slice(0, cfg.warmupClients), cfg.warmupClients);
  await closeAll(warm.sockets);
  await waitQuiet();
  await sleep(500);
  const rssBaseKb = serverRssKb();
  log(`connecting ${clients.length} clients (baseline RSS ${rssBaseKb} KB)`);
  await mark("start");
  const tc0 = now();
  const cpuC0 = serverCpuS();
  const conn = await connectAll(clients, cfg.connectConcurrency, null, {
    retry: true,
    patienceAt: patienceAt(),
  });
  const connectSeconds = (now() - tc0) / 1000;
  const connectCpuS = serverCpuS() - cpuC0;
  await mark("end");
  let dropped = 0;
  for (const s of conn.sockets) if (s) s.on("disconnect", () => dropped++);
  await waitQuiet();
  await mark("start hold");
  const cpu0 = serverCpuS();
  const t0 = now();
  const samples = [];
  while (now() - t0 < cfg.hold * 1000) {
    await sleep(Math.min(1000, Math.max(10, t0 + cfg.hold * 1000 - now())));
    samples.push(serverRssKb());
  }
  const holdS = (now() - t0) / 1000;
  await mark("end");
  const droppedDuringHold = dropped;
  const cpu1 = serverCpuS();
  const rssEndKb = serverRssKb();
  const connected = conn.sockets.filter((s) => s && s.connected).length;
  await closeAll(conn.sockets);
  const n = clients.length - conn.failed;
  return {
    ...attempts(clients, conn),
    connectSeconds,
    connectCpuUsPerClient: clients.length > conn.failed ? (connectCpuS * 1e6) / (clients.length - conn.failed) : null,
    holdSeconds: holdS,
    connectedAtEnd: connected,
    droppedDuringHold,
    rssBaseKb,
    rssEndKb,
    rssMaxKb: Math.max(rssEndKb, ...samples),
    kbPerConnection: n > 0 ? (rssEndKb - rssBaseKb) / n : null,
    idleCpuShare: (cpu1 - cpu0) / holdS,
  };
}

export async function runStorm() {
  const clients = cfg.clients;
  await waitQuiet();
  await mark("start");
  const overflows0 = tcpListenDrops();
  const cpu0 = serverCpuS();
  const self0 = selfCpuS();
  const t0 = now();
  log(`storm: ${clients.length} clients, ${cfg.connectConcurrency} at once`);
  const conn = await connectAll(clients, cfg.connectConcurrency, null, {
    retry: true,
    patienceAt: patienceAt(),
  });
  const seconds = (now() - t0) / 1000;
  const cpu1 = serverCpuS();
  await mark("end");
  const self1 = selfCpuS();
  const overflows = tcpListenDrops() - overflows0;
  await closeAll(conn.sockets);
  const n = clients.length - conn.failed;
  return {
    ...attempts(clients, conn),
    concurrency: cfg.connectConcurrency,
    seconds,
    perClientMs: quantiles(conn.times),
    serverCpuS: cpu1 - cpu0,
    serverCpuUsPerClient: n > 0 ? ((cpu1 - cpu0) * 1e6) / n : null,
    loadgenCpuShare: seconds > 0 ? (self1 - self0) / seconds : null,
    listenOverflows: overflows,
  };
}

