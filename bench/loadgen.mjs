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
//
// The parts: loadgen/config.mjs (the configuration, clock and exit),
// loadgen/measure.mjs (server, machine and own figures from /proc; quantiles),
// loadgen/clients.mjs (connect and join), loadgen/messages.mjs and
// loadgen/overload.mjs (relay, chat, rest), loadgen/connections.mjs (idle, storm).
import { cfg, finish, hardStop, log } from "./loadgen/config.mjs";
import { runIdle, runStorm } from "./loadgen/connections.mjs";
import { runMessages } from "./loadgen/messages.mjs";

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

