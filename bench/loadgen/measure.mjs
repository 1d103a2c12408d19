// What the load generator measures besides its clients: the server processes' and
// the machine's figures from /proc, its own CPU, the harness's window marks, and
// quantiles.
import fs from "node:fs";

import { cfg, now, sleep } from "./config.mjs";

// ---- server process figures from /proc -------------------------------------------
export function serverCpuS() {
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
export function serverCpuSplitS() {
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
export function machineTicks() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, x) => a + x, 0);
  return { busy: total - f[3] - f[4], total };
}

export function serverRssKb() {
  let sum = 0;
  for (const pid of cfg.serverPids) {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
    sum += m ? Number(m[1]) : 0;
  }
  return sum;
}

export function tcpListenDrops() {
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

export async function waitQuiet() {
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

export async function mark(what) {
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

export function selfCpuS() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---- statistics ---------------------------------------------------------------------
export function quantiles(values) {
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

