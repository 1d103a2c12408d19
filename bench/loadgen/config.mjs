// The load generator's configuration (`node bench/loadgen.mjs <config.json>`:
// `defaults` below, overridden by the file), its clock, log and exit.
import fs from "node:fs";
import { performance } from "node:perf_hooks";

const defaults = {
  urls: [], // the server's processes (loopback only); client i uses urls[i % n]
  serverPids: [], // their process ids, for CPU time and RSS (summed) from /proc
  clkTck: 100, // kernel clock ticks per second (os.sysconf("SC_CLK_TCK"))
  phase: "relay", // relay | chat | rest | idle | storm
  loop: "closed", // closed | open | overload (chat only)
  clients: [], // [{token, userId, bamId}]: one socket each, joined to bamId
  senders: [], // indexes into clients (relay, chat)
  posters: [], // [{token, bamId}] (rest); poster i uses urls[i % n]
  messages: 1000, // M: sends per sender (closed loop), a cap
  window: 1, // sends in flight per sender (closed loop)
  duration: 10, // s: closed loop stops sending after this; open loop length
  rate: 10000, // open loop: target deliveries per second (all rooms together)
  grace: 5, // s: after the last send, wait this long at most for deliveries
  connectConcurrency: 200, // connects + joins in flight while setting up
  hold: 30, // idle: seconds the connections are held
  warmupClients: 10, // idle: clients connected and dropped before the baseline
  ackTimeout: 30000, // ms
  connectTimeout: 60000, // ms
  quietCpu: 0.05, // server is "quiet" below this CPU share (of one core)
  quietMax: 20, // s: wait at most this long for a quiet server
  deadline: 600, // s: hard stop for the whole phase
  patience: 600, // idle, storm: s a client keeps retrying to connect + join
  contentBytes: 64, // size of chat message bodies
  maxRestInFlight: 256, // open-loop REST: requests in flight at most
  recoveryMax: 60, // overload: s after the load to wait at most for recovery
  stallMs: 1000, // overload: nothing answered or delivered this long = backlog gone
  probeMs: 50, // overload: a probe within max(this, 3x the probe before the load)
};

export const cfg = { ...defaults, ...JSON.parse(fs.readFileSync(process.argv[2], "utf8")) };
if (!cfg.urls.length) {
  console.error("loadgen: no urls");
  process.exit(2);
}
for (const url of cfg.urls) {
  if (new URL(url).hostname !== "127.0.0.1") {
    console.error(`loadgen: refusing non-loopback target ${url}`);
    process.exit(2);
  }
}
// Spread clients and posters over the processes: with two, every room of
// consecutive clients has members on both.
cfg.clients.forEach((c, i) => (c.url = cfg.urls[i % cfg.urls.length]));
cfg.posters.forEach((p, i) => (p.url = cfg.urls[i % cfg.urls.length]));

export const now = () => performance.now();
const phaseStart = now();
// Idle and storm clients may keep retrying until this: `patience` s after the
// connecting starts, and never so late that the phase cannot finish.
export const patienceAt = () =>
  Math.min(now() + cfg.patience * 1000, phaseStart + Math.max(5, cfg.deadline - (cfg.hold || 0) - cfg.quietMax - 20) * 1000);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const log = (...a) => console.error(`[loadgen ${cfg.phase}/${cfg.loop}]`, ...a);

export function finish(result, code = 0) {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(code));
}

export const hardStop = setTimeout(() => {
  log(`deadline of ${cfg.deadline}s reached; giving up`);
  finish({ phase: cfg.phase, loop: cfg.loop, error: `deadline ${cfg.deadline}s reached` }, 3);
}, cfg.deadline * 1000);

