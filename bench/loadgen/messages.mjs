// The message phases: relay (typing), chat (send-message) and rest (POST), each
// in a closed loop, an open loop or (chat) the overload loop of overload.mjs.
import { closeAll, connectAll } from "./clients.mjs";
import { cfg, log, now, sleep } from "./config.mjs";
import {
  machineTicks,
  mark,
  quantiles,
  selfCpuS,
  serverCpuSplitS,
  serverRssKb,
  waitQuiet,
} from "./measure.mjs";
import { Prober, runOverload } from "./overload.mjs";

export async function runMessages() {
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
  let prober = null; // overload: its probes

  function onDelivery(receiverIdx, payload) {
    const tempId = payload && payload.tempId;
    if (typeof tempId === "string" && tempId.startsWith("p")) {
      if (prober) prober.delivered(tempId);
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

  if (overload) {
    const room = sources[0].client.bamId;
    prober = new Prober({ clients, sockets, room, nonce, content });
    await prober.baseline();
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
    const run = { t0, state, counts, sources, seqOf, acked, got, rssBeforeKb, openLoop };
    ({ sendEnd, overload: ov } = await runOverload(run, prober));
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

