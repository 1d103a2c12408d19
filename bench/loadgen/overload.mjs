// The overload loop (`loop: "overload"`, chat only): the open loop at a rate
// above what the server sustains for `duration` s, then the time until the
// server is back to normal, its RSS along the way, and every message that was
// never acked or never reached all of its room.
import { cfg, now, sleep } from "./config.mjs";
import { quantiles, serverRssKb, waitQuiet } from "./measure.mjs";

// A probe is one message from a member of the first room that is not a sender
// (no backlog of its own): its time until both its ack and its deliveries to
// the room's connected members are in (null: not in time).
export class Prober {
  constructor({ clients, sockets, room, nonce, content }) {
    this.sockets = sockets;
    this.clients = clients;
    this.nonce = nonce;
    this.content = content;
    this.members = clients.map((c, i) => i).filter((i) => clients[i].bamId === room);
    this.from = this.members.find((i) => !cfg.senders.includes(i)) ?? cfg.senders[0];
    this.inFlight = new Map(); // tempId -> probe
    this.n = 0;
    this.baselineMs = null;
    this.thresholdMs = null;
  }

  // One of the room's deliveries of a probe (its tempId).
  delivered(tempId) {
    const p = this.inFlight.get(tempId);
    if (p) {
      p.got++;
      this.check(p);
    }
  }

  check(p) {
    if (p.ok && p.got >= p.need && !p.doneAt) {
      p.doneAt = now();
      p.resolve();
    }
  }

  async probe(timeoutMs) {
    const socket = this.sockets[this.from];
    const client = this.clients[this.from];
    const tempId = `p${this.n++}.${this.nonce}`;
    const need = this.members.filter((i) => this.sockets[i].connected).length;
    const p = { got: 0, need, ok: false, doneAt: null, resolve: null };
    const done = new Promise((r) => (p.resolve = r));
    this.inFlight.set(tempId, p);
    const t = now();
    socket
      .timeout(timeoutMs)
      .emitWithAck("send-message", { bamId: client.bamId, content: `probe ${this.content}`, tempId })
      .then((ack) => {
        p.ok = Boolean(ack && ack.ok === true);
        this.check(p);
      })
      .catch(() => {});
    await Promise.race([done, sleep(timeoutMs)]);
    this.inFlight.delete(tempId);
    return p.doneAt ? p.doneAt - t : null;
  }

  // Before the load: five probes on a quiet server; back to normal later means
  // a probe within max(`probeMs`, 3x their median).
  async baseline() {
    await waitQuiet();
    const base = [];
    for (let i = 0; i < 5; i++) {
      const ms = await this.probe(2000);
      if (ms !== null) base.push(ms);
    }
    this.baselineMs = base.length ? quantiles(base).p50 : null;
    this.thresholdMs = Math.max(cfg.probeMs, 3 * (this.baselineMs || 0));
  }
}

// The rate for `duration`, then until the server is back to normal (bounded by
// `recoveryMax`): every send answered and delivered, or nothing more arriving
// for `stallMs`; then a probe within the threshold. `run` is the message
// phase's state (runMessages); returns when the sending ended and the figures.
export async function runOverload(run, prober) {
  const { t0, state, counts, sources, seqOf, acked, got, rssBeforeKb } = run;
  const samples = [];
  const sampler = setInterval(() => samples.push({ t: now() - t0, kb: serverRssKb() }), 250);
  await run.openLoop(cfg.rate, cfg.duration, t0);
  const sendEnd = now();
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
    lastProbeMs = await prober.probe(Math.max(1, Math.min(2000, until - now())));
    if (lastProbeMs !== null && lastProbeMs <= prober.thresholdMs) {
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
  const overload = {
    baselineProbeMs: prober.baselineMs,
    probeThresholdMs: prober.thresholdMs,
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
  return { sendEnd, overload };
}
