// Load generator for the BAM Chat benchmark (issues 6 and 15): official socket.io-client@4.
//
//   node bench/loadgen.mjs <config.json>
//
// One invocation runs one phase against one server and prints one line
// `RESULT {json}` on stdout (progress goes to stderr). bench/run.py writes the
// config; the fields are documented in `defaults` below. Every phase is bounded
// in time (`duration`, `grace`, and a hard `deadline` after which the process
// reports what it has and exits) and only ever talks to 127.0.0.1.
//
// Phases
//   relay  typing-start / typing-stop (alternating) from S senders per room;
//          each is fanned out as `typing-status` to the R-1 other room members.
//   chat   send-message from S senders per room; `new-message` to all R members.
//   rest   POST /bams/{id}/messages; members receive `new-message`.
//   idle   N clients connect + join, are held `hold` s; server RSS per client.
//   storm  N clients connect + join at once; time until every join is acked.
// relay/chat/rest run `loop: "closed"` (each sender waits for its ack before
// the next send, `window` in flight) or `loop: "open"` (fixed total rate of
// `rate` deliveries/s, latency measured from each send's scheduled time so a
// slow server cannot hide its queueing). chat also runs `loop: "overload"`: the
// open loop for `duration` s at a rate above what the server sustains, then
// the time until it is back to normal, its RSS along the way, and every
// message that was never acked or never reached all of its room.
//
// A server may be several processes (`urls`, `serverPids`): clients alternate
// between them, CPU time and RSS are their sums.
import fs from "node:fs";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

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

const cfg = { ...defaults, ...JSON.parse(fs.readFileSync(process.argv[2], "utf8")) };
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

const now = () => performance.now();
const phaseStart = now();
// Idle and storm clients may keep retrying until this: `patience` s after the
// connecting starts, and never so late that the phase cannot finish.
const patienceAt = () =>
  Math.min(now() + cfg.patience * 1000, phaseStart + Math.max(5, cfg.deadline - (cfg.hold || 0) - cfg.quietMax - 20) * 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[loadgen ${cfg.phase}/${cfg.loop}]`, ...a);

function finish(result, code = 0) {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(code));
}

const hardStop = setTimeout(() => {
  log(`deadline of ${cfg.deadline}s reached; giving up`);
  finish({ phase: cfg.phase, loop: cfg.loop, error: `deadline ${cfg.deadline}s reached` }, 3);
}, cfg.deadline * 1000);

// ---- server process figures from /proc -------------------------------------------
function serverCpuS() {
  return serverCpuSplitS().total;
}

// utime + stime and stime of a /proc stat line, in seconds.
function statCpuS(path) {
  const stat = fs.readFileSync(path, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const kernel = Number(f[12]) / cfg.clkTck;
  return { total: Number(f[11]) / cfg.clkTck + kernel, kernel };
}

// Server CPU seconds so far: total, the part spent in the kernel (stime), and
// the part of each process's main thread (the one that runs the event loop; the
// rest is its threads: database work, the thread pool).
function serverCpuSplitS() {
  let total = 0;
  let kernel = 0;
  let loop = 0;
  for (const pid of cfg.serverPids) {
    const all = statCpuS(`/proc/${pid}/stat`);
    total += all.total;
    kernel += all.kernel;
    loop += statCpuS(`/proc/${pid}/task/${pid}/stat`).total;
  }
  return { total, kernel, loop };
}

// The whole machine's CPU ticks so far (all cores): busy (all but idle and
// iowait) and total, from /proc/stat; how busy the machine was in a phase tells
// whether the servers had cores to themselves or waited for them.
function machineTicks() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, x) => a + x, 0);
  return { busy: total - f[3] - f[4], total };
}

function serverRssKb() {
  let sum = 0;
  for (const pid of cfg.serverPids) {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
    sum += m ? Number(m[1]) : 0;
  }
  return sum;
}

function tcpListenDrops() {
  try {
    const lines = fs.readFileSync("/proc/net/netstat", "utf8").split("\n");
    for (let i = 0; i < lines.length - 1; i++) {
      if (lines[i].startsWith("TcpExt:") && lines[i + 1].startsWith("TcpExt:")) {
        const k = lines[i].split(/\s+/);
        const v = lines[i + 1].split(/\s+/);
        return Number(v[k.indexOf("ListenOverflows")]) || 0;
      }
    }
  } catch {}
  return 0;
}

async function waitQuiet() {
  // Until the server uses under `quietCpu` of a core over 0.3 s (bounded).
  const until = now() + cfg.quietMax * 1000;
  while (now() < until) {
    const c0 = serverCpuS();
    await sleep(300);
    const tick = (0.5 * cfg.serverPids.length) / cfg.clkTck / 0.3; // rounding of /proc
    if ((serverCpuS() - c0) / 0.3 <= cfg.quietCpu + tick) return true;
  }
  return false;
}

// With `handshake`, tell the harness where the measured window starts and ends
// (`MARK start` / `MARK end` on stdout) and wait for its `go` on stdin each time,
// e.g. so that a profiler is attached to the server for exactly that window.
const stdinLines = [];
let stdinWaiter = null;
if (cfg.handshake) {
  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    buffered += chunk;
    let i;
    while ((i = buffered.indexOf("\n")) >= 0) {
      stdinLines.push(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
      if (stdinWaiter) stdinWaiter();
    }
  });
}

async function mark(what) {
  if (!cfg.handshake) return;
  process.stdout.write(`MARK ${what}\n`);
  const until = now() + 30_000;
  while (!stdinLines.length && now() < until) {
    await new Promise((r) => {
      stdinWaiter = r;
      setTimeout(r, 1000);
    });
  }
  stdinLines.shift();
}

function selfCpuS() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---- statistics ---------------------------------------------------------------------
function quantiles(values) {
  if (!values.length) return { n: 0 };
  const a = Float64Array.from(values).sort();
  const q = (p) => a[Math.min(a.length - 1, Math.floor(p * a.length))];
  return {
    n: a.length,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: a[a.length - 1],
    mean: a.reduce((s, x) => s + x, 0) / a.length,
  };
}

// ---- clients -------------------------------------------------------------------------
function connect(client) {
  const socket = io(client.url, {
    transports: ["websocket"],
    auth: { token: client.token },
    reconnection: false,
    forceNew: true,
    timeout: cfg.connectTimeout,
  });
  return new Promise((resolve, reject) => {
    // The client library has no timeout once the transport is open and the
    // Socket.IO CONNECT is pending, and says nothing if the server then drops
    // the transport: watch both, so every attempt ends.
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(why));
      socket.close();
    };
    const timer = setTimeout(() => fail("connect timeout"), cfg.connectTimeout);
    socket.once("connect", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => fail(`connect_error: ${err.message}`));
    socket.io.once("close", (reason) => {
      if (!socket.connected) fail(`closed while connecting: ${reason}`);
    });
  });
}

async function connectAndJoin(client, setup) {
  const t0 = now();
  const socket = await connect(client);
  if (setup) setup(socket);
  let ack;
  try {
    ack = await socket.timeout(cfg.ackTimeout).emitWithAck("join-bam", { bamId: client.bamId });
  } catch (err) {
    socket.close();
    throw new Error(`join-bam: ${err.message}`);
  }
  if (!ack || ack.ok !== true) {
    socket.close();
    const err = new Error(`join-bam refused: ${JSON.stringify(ack)}`);
    err.refused = true; // an answer, not a connection failure: no retry
    throw err;
  }
  return { socket, ms: now() - t0 };
}

// Connect + join every client, `concurrency` at a time. With `retry`, a client
// whose connection fails tries again the way socket.io-client's reconnection
// does (1 s doubling to 5 s, +-50 % jitter) until `patienceAt`: the time until
// everyone is in then includes what a server's refusals cost its users.
async function connectAll(clients, concurrency, setup, { retry = false, patienceAt = Infinity } = {}) {
  const sockets = new Array(clients.length).fill(null);
  const times = [];
  const errors = {};
  let failed = 0;
  let retries = 0;
  let next = 0;
  const note = (err) => {
    const key = String(err.message).slice(0, 80);
    errors[key] = (errors[key] || 0) + 1;
  };
  async function worker() {
    while (next < clients.length) {
      const i = next++;
      const t0 = now();
      for (let attempt = 1; ; attempt++) {
        try {
          const { socket } = await connectAndJoin(clients[i], setup && ((s) => setup(s, i)));
          sockets[i] = socket;
          times.push(now() - t0);
          break;
        } catch (err) {
          note(err);
          const delay = Math.min(1000 * 2 ** (attempt - 1), 5000) * (0.5 + Math.random());
          if (!retry || err.refused || now() + delay > patienceAt) {
            failed++;
            break;
          }
          retries++;
          await sleep(delay);
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, clients.length)) }, worker));
  return { sockets, times, errors, failed, retries };
}

async function closeAll(sockets) {
  for (const s of sockets) if (s) s.disconnect();
  await sleep(200);
}

// ---- message workloads ------------------------------------------------------------------
async function runMessages() {
  const { phase } = cfg;
  const overload = cfg.loop === "overload";
  if (overload && phase !== "chat") throw new Error("the overload loop sends chat messages only");
  const clients = cfg.clients;
  const roomSize = {};
  for (const c of clients) roomSize[c.bamId] = (roomSize[c.bamId] || 0) + 1;

  // Who sends, and how many deliveries each send should produce.
  let sources; // [{socket?, client?, poster?, fanout}]
  const recvEvent = phase === "relay" ? "typing-status" : "new-message";

  const state = {
    recording: false,
    delivered: 0,
    unmatched: 0,
    mismatched: 0,
    lat: [],
    lastDelivery: 0,
    lastProgress: 0, // last delivery or ack
    expected: 0,
    doneWaiter: null,
  };
  const sendTimes = []; // per source: send times by seq
  const got = []; // chat/rest: per source, deliveries by seq
  const acked = []; // per source, by seq: true (ok), false (refused), undefined (no answer)
  const ackLat = []; // ms from each send's scheduled time to its ok ack
  // tempIds are unique per run: BAM Chat deduplicates (sender, tempId) for good.
  const nonce = Math.random().toString(36).slice(2, 10);
  const keyToSource = new Map(); // relay: `${bamId}|${userId}` -> source index
  const perReceiver = []; // relay: per client Map(key -> count)
  const probes = new Map(); // overload: tempId -> probe in flight

  function onDelivery(receiverIdx, payload) {
    const tempId = payload && payload.tempId;
    if (typeof tempId === "string" && tempId.startsWith("p")) {
      const p = probes.get(tempId);
      if (p) {
        p.got++;
        probeCheck(p);
      }
      return;
    }
    if (!state.recording) return;
    const t = now();
    state.delivered++;
    state.lastDelivery = t;
    state.lastProgress = t;
    let src;
    let seq;
    if (phase === "relay") {
      const key = `${payload.bamId}|${payload.userId}`;
      src = keyToSource.get(key);
      const counts = perReceiver[receiverIdx];
      seq = counts.get(key) || 0;
      counts.set(key, seq + 1);
      if (src !== undefined && payload.isTyping !== (seq % 2 === 0)) state.mismatched++;
    } else {
      const m = /^b(\d+)\.(\d+)\.(\w+)$/.exec(tempId);
      if (m && m[3] === nonce) {
        src = Number(m[1]);
        seq = Number(m[2]);
        if (got[src]) got[src][seq] = (got[src][seq] || 0) + 1;
      }
    }
    const sent = src !== undefined ? sendTimes[src][seq] : undefined;
    if (sent === undefined) state.unmatched++;
    else state.lat.push(t - sent);
    if (state.doneWaiter && state.delivered >= state.expected) state.doneWaiter();
  }

  log(`connecting ${clients.length} clients`);
  const drops = {}; // reason -> sockets the connection of which ended mid-phase
  const conn = await connectAll(clients, cfg.connectConcurrency, (socket, i) => {
    perReceiver[i] = new Map();
    socket.on(recvEvent, (payload) => onDelivery(i, payload));
    socket.on("disconnect", (reason) => {
      if (state.recording) drops[reason] = (drops[reason] || 0) + 1;
    });
  });
  if (conn.failed) {
    await closeAll(conn.sockets);
    return { error: `${conn.failed} clients failed to connect/join`, errors: conn.errors };
  }
  const sockets = conn.sockets;

  if (phase === "rest") {
    sources = cfg.posters.map((p) => ({ poster: p, fanout: roomSize[p.bamId] || 0 }));
  } else {
    sources = cfg.senders.map((i) => {
      const c = clients[i];
      const fanout = (roomSize[c.bamId] || 0) - (phase === "relay" ? 1 : 0);
      keyToSource.set(`${c.bamId}|${c.userId}`, keyToSource.size);
      return { socket: sockets[i], client: c, fanout };
    });
  }
  for (let s = 0; s < sources.length; s++) {
    sendTimes.push([]);
    got.push([]);
    acked.push([]);
  }
  const content = "x".repeat(Math.max(1, cfg.contentBytes - 12));

  const counts = { sent: 0, acked: 0, failed: 0, refused: 0, skipped: 0 };
  const failures = {};
  const seqOf = new Array(sources.length).fill(0);
  let restInFlight = 0;

  function noteFailure(what) {
    counts.failed++;
    const key = String(what).slice(0, 120);
    failures[key] = (failures[key] || 0) + 1;
  }

  function answered(s, seq, at, ok) {
    state.lastProgress = now();
    acked[s][seq] = ok;
    if (ok) {
      counts.acked++;
      ackLat.push(now() - at);
    } else {
      counts.refused++;
      state.expected -= sources[s].fanout;
    }
  }

  // One send from source s, scheduled at `at` (ms, performance clock). Resolves on ack.
  function sendOne(s, at) {
    const src = sources[s];
    const seq = seqOf[s]++;
    sendTimes[s][seq] = at;
    counts.sent++;
    state.expected += src.fanout;
    if (phase === "rest") {
      restInFlight++;
      return fetch(`${src.poster.url}/bams/${src.poster.bamId}/messages`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${src.poster.token}`,
        },
        body: JSON.stringify({ text: `${seq} ${content}`, tempId: `b${s}.${seq}.${nonce}` }),
      })
        .then(async (res) => {
          await res.arrayBuffer();
          answered(s, seq, at, res.status === 201);
          if (res.status !== 201) noteFailure(`HTTP ${res.status}`);
        })
        .catch((err) => {
          state.expected -= src.fanout;
          noteFailure(err.message);
        })
        .finally(() => restInFlight--);
    }
    let event;
    let payload;
    if (phase === "relay") {
      event = seq % 2 === 0 ? "typing-start" : "typing-stop";
      payload = src.client.bamId;
    } else {
      event = "send-message";
      payload = {
        bamId: src.client.bamId,
        content: `${seq} ${content}`,
        tempId: `b${s}.${seq}.${nonce}`,
      };
    }
    return src.socket
      .timeout(cfg.ackTimeout)
      .emitWithAck(event, payload)
      .then((ack) => {
        const ok = Boolean(ack && ack.ok === true);
        answered(s, seq, at, ok);
        if (!ok) noteFailure(JSON.stringify(ack && ack.error ? ack.error.code : ack));
      })
      .catch((err) => {
        noteFailure(err.message);
      });
  }

  // Relay: every sender ends on typing-stop so no typing state outlives the phase.
  async function evenOut() {
    if (phase !== "relay") return;
    const pending = [];
    for (let s = 0; s < sources.length; s++) {
      if (seqOf[s] % 2 === 1) pending.push(sendOne(s, now()));
    }
    await Promise.all(pending);
  }

  // Open loop: `rate` deliveries/s for `duration` s from t0, each send at its
  // scheduled time whatever the answers; resolves after the last send with the
  // sends still unanswered.
  async function openLoop(rate, duration, t0) {
    const meanFanout = sources.reduce((a, x) => a + x.fanout, 0) / sources.length;
    const sendRate = rate / meanFanout; // sends per second, all sources together
    const total = Math.max(1, Math.round(sendRate * duration));
    const interval = 1000 / sendRate;
    const inflight = new Set();
    let k = 0;
    await new Promise((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor((now() - t0) / interval) + 1);
        while (k < due) {
          const at = t0 + k * interval;
          const s = k % sources.length;
          k++;
          if (phase === "rest" && restInFlight >= cfg.maxRestInFlight) {
            counts.skipped++;
            continue;
          }
          const p = sendOne(s, at);
          inflight.add(p);
          p.finally(() => inflight.delete(p));
        }
        if (k >= total) resolve();
        else setTimeout(tick, Math.max(0, t0 + k * interval - now()));
      };
      tick();
    });
    return inflight;
  }

  // Overload: a probe is one message from a member of the first room that is
  // not a sender (no backlog of its own), its time until both its ack and its
  // deliveries to the room's connected members are in (null: not in time).
  let probeN = 0;
  const probeRoom = overload ? sources[0].client.bamId : null;
  const members = clients.map((c, i) => i).filter((i) => clients[i].bamId === probeRoom);
  const probeFrom = members.find((i) => !cfg.senders.includes(i)) ?? cfg.senders[0];
  function probeCheck(p) {
    if (p.ok && p.got >= p.need && !p.doneAt) {
      p.doneAt = now();
      p.resolve();
    }
  }
  async function probe(timeoutMs) {
    const src = { socket: sockets[probeFrom], client: clients[probeFrom] };
    const tempId = `p${probeN++}.${nonce}`;
    const need = members.filter((i) => sockets[i].connected).length;
    const p = { got: 0, need, ok: false, doneAt: null, resolve: null };
    const done = new Promise((r) => (p.resolve = r));
    probes.set(tempId, p);
    const t = now();
    src.socket
      .timeout(timeoutMs)
      .emitWithAck("send-message", { bamId: src.client.bamId, content: `probe ${content}`, tempId })
      .then((ack) => {
        p.ok = Boolean(ack && ack.ok === true);
        probeCheck(p);
      })
      .catch(() => {});
    await Promise.race([done, sleep(timeoutMs)]);
    probes.delete(tempId);
    return p.doneAt ? p.doneAt - t : null;
  }

  let baselineProbeMs = null;
  let probeThresholdMs = null;
  if (overload) {
    await waitQuiet();
    const base = [];
    for (let i = 0; i < 5; i++) {
      const ms = await probe(2000);
      if (ms !== null) base.push(ms);
    }
    baselineProbeMs = base.length ? quantiles(base).p50 : null;
    probeThresholdMs = Math.max(cfg.probeMs, 3 * (baselineProbeMs || 0));
  }

  await waitQuiet();
  const rssBeforeKb = serverRssKb();
  await mark("start");
  const split0 = serverCpuSplitS();
  const machine0 = machineTicks();
  const cpu0 = split0.total;
  const self0 = selfCpuS();
  const t0 = now();
  state.recording = true;
  let sendEnd;
  let ov = null;

  if (cfg.loop === "closed") {
    const stopAt = t0 + cfg.duration * 1000;
    const loops = [];
    for (let s = 0; s < sources.length; s++) {
      for (let w = 0; w < cfg.window; w++) {
        loops.push(
          (async () => {
            while (seqOf[s] < cfg.messages && now() < stopAt) await sendOne(s, now());
          })(),
        );
      }
    }
    await Promise.all(loops);
    await evenOut();
    sendEnd = now();
  } else if (cfg.loop === "open") {
    const inflight = await openLoop(cfg.rate, cfg.duration, t0);
    sendEnd = now();
    await evenOut();
    await Promise.race([Promise.all([...inflight]), sleep(cfg.grace * 1000)]);
  } else {
    // Overload: the rate for `duration`, then until the server is back to
    // normal (bounded by `recoveryMax`): every send answered and delivered, or
    // nothing more arriving for `stallMs`; then a probe within the threshold.
    const samples = [];
    const sampler = setInterval(() => samples.push({ t: now() - t0, kb: serverRssKb() }), 250);
    await openLoop(cfg.rate, cfg.duration, t0);
    sendEnd = now();
    const deliveredDuringLoad = state.delivered;
    const rssLoadEndKb = serverRssKb();
    const until = sendEnd + cfg.recoveryMax * 1000;
    let recoveredAt = null;
    let lastProbeMs = null;
    let probesSent = 0;
    while (now() < until) {
      const pending = counts.sent - counts.acked - counts.failed; // failed: refused too
      const stalled = now() - Math.max(state.lastProgress, sendEnd) > cfg.stallMs;
      if ((pending > 0 || state.delivered < state.expected) && !stalled) {
        await sleep(20);
        continue;
      }
      probesSent++;
      lastProbeMs = await probe(Math.max(1, Math.min(2000, until - now())));
      if (lastProbeMs !== null && lastProbeMs <= probeThresholdMs) {
        recoveredAt = now();
        break;
      }
    }
    clearInterval(sampler);
    // Still answering or delivering at the end: what is missing may yet come.
    const progressing = recoveredAt === null && now() - state.lastProgress <= cfg.stallMs;
    const half = samples.filter((x) => x.t <= (cfg.duration * 1000) / 2);
    let neverAcked = 0;
    let undelivered = 0;
    for (let s = 0; s < sources.length; s++) {
      for (let seq = 0; seq < seqOf[s]; seq++) {
        if (acked[s][seq] === undefined) neverAcked++;
        else if (acked[s][seq] && (got[s][seq] || 0) < sources[s].fanout) undelivered++;
      }
    }
    ov = {
      baselineProbeMs,
      probeThresholdMs,
      rssBeforeKb,
      rssHalfKb: half.length ? half[half.length - 1].kb : rssBeforeKb,
      rssLoadEndKb,
      rssPeakKb: Math.max(rssBeforeKb, rssLoadEndKb, ...samples.map((x) => x.kb)),
      rssAfterKb: serverRssKb(),
      recoverySeconds: recoveredAt === null ? null : (recoveredAt - sendEnd) / 1000,
      recoveryMax: cfg.recoveryMax,
      lastProbeMs,
      probes: probesSent,
      neverAcked,
      undelivered,
      lostMessages: progressing ? null : neverAcked + undelivered,
      pendingMessages: progressing ? neverAcked + undelivered : 0,
      refused: counts.refused,
      deliveredDuringLoadPerS: deliveredDuringLoad / ((sendEnd - t0) / 1000),
    };
  }

  // Wait for the deliveries still on their way (bounded by `grace`).
  if (!overload && state.delivered < state.expected) {
    await new Promise((resolve) => {
      state.doneWaiter = resolve;
      setTimeout(resolve, cfg.grace * 1000);
    });
  }
  const split1 = serverCpuSplitS();
  const machine1 = machineTicks();
  const cpu1 = split1.total;
  const self1 = selfCpuS();
  state.recording = false;
  await mark("end");
  const tEnd = state.lastDelivery || now();
  const elapsed = (tEnd - t0) / 1000;
  const serverCpu = cpu1 - cpu0;

  const result = {
    sources: sources.length,
    clients: clients.length,
    processes: cfg.urls.length,
    meanFanout: sources.reduce((a, x) => a + x.fanout, 0) / sources.length,
    targetRate: cfg.loop === "closed" ? null : cfg.rate,
    sent: counts.sent,
    acked: counts.acked,
    failed: counts.failed,
    refused: counts.refused,
    skipped: counts.skipped,
    failures: { ...failures },
    expected: state.expected,
    delivered: state.delivered,
    lost: Math.max(0, state.expected - state.delivered),
    unmatched: state.unmatched,
    mismatched: state.mismatched,
    sendSeconds: (sendEnd - t0) / 1000,
    seconds: elapsed,
    deliveredPerS: elapsed > 0 ? state.delivered / elapsed : 0,
    serverCpuS: serverCpu,
    serverCpuUsPerDelivery: state.delivered ? (serverCpu * 1e6) / state.delivered : null,
    serverCpuShare: elapsed > 0 ? serverCpu / elapsed : null,
    serverKernelShare: serverCpu > 0 ? (split1.kernel - split0.kernel) / serverCpu : null,
    // The thread and its process are read a moment apart, in 10 ms ticks: in a
    // window of a few ticks the thread may show one more than the process.
    serverLoopShare: serverCpu > 0 ? Math.min(1, (split1.loop - split0.loop) / serverCpu) : null,
    loadgenCpuShare: elapsed > 0 ? (self1 - self0) / elapsed : null,
    machineBusyShare:
      machine1.total > machine0.total
        ? (machine1.busy - machine0.busy) / (machine1.total - machine0.total)
        : null,
    latencyMs: quantiles(state.lat),
    ackLatencyMs: quantiles(ackLat),
    drops: { ...drops },
    ...(ov ? { overload: ov } : {}),
  };
  await closeAll(sockets);
  return result;
}

// ---- idle and storm --------------------------------------------------------------------
async function runIdle() {
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
    clients: clients.length,
    failed: conn.failed,
    retries: conn.retries,
    errors: conn.errors,
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

async function runStorm() {
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
    clients: clients.length,
    concurrency: cfg.connectConcurrency,
    failed: conn.failed,
    retries: conn.retries,
    errors: conn.errors,
    seconds,
    perClientMs: quantiles(conn.times),
    serverCpuS: cpu1 - cpu0,
    serverCpuUsPerClient: n > 0 ? ((cpu1 - cpu0) * 1e6) / n : null,
    loadgenCpuShare: seconds > 0 ? (self1 - self0) / seconds : null,
    listenOverflows: overflows,
  };
}

// ---- main -----------------------------------------------------------------------------------
const runners = { relay: runMessages, chat: runMessages, rest: runMessages, idle: runIdle, storm: runStorm };
const runner = runners[cfg.phase];
if (!runner) {
  console.error(`loadgen: unknown phase ${cfg.phase}`);
  process.exit(2);
}
try {
  const result = await runner();
  clearTimeout(hardStop);
  finish({ phase: cfg.phase, loop: cfg.loop, ...result });
} catch (err) {
  clearTimeout(hardStop);
  log(err.stack || err);
  finish({ phase: cfg.phase, loop: cfg.loop, error: String(err.message || err) }, 1);
}
