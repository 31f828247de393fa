#!/usr/bin/env python3
"""Agent footprint next to `ss -tlnp` on a synthetic host (run it through
bench/agent-footprint.sh, which gives it a private network namespace).

Inside the namespace: 1,000 idle listeners and 50,000 established loopback
connections (bench/hold_sockets.py), a plaintext loopback collector, then
  1. `ss -tlnp` ROUNDS times: wall, CPU (user+sys), max RSS;
  2. `gw502-agent snapshot --json` ROUNDS times (a cold process each time:
     every source once, owner cache empty): wall, CPU, max RSS;
  3. `gw502-agent run` at a 10 s interval for STEADY seconds against the
     collector: RSS, PSS and anonymous RSS from /proc/PID/smaps_rollup, CPU
     per report and % of one core from /proc/PID/stat.
  4. with NODE_EXPORTER (its binary), ROUNDS scrapes of Prometheus
     node_exporter with its systemd collector on: wall, exporter CPU, RSS.
With SOURCES (comma list of `containers`, `varnish`; bench/footprint_sources.py)
a Docker Engine with containers and a varnishd with traffic run in the same
namespace and the agent reads them; the steady table then also counts the CPU
of the agent's reaped child processes (varnishadm, varnishlog) and lists each
source's mean wall time per report from the agent's own
`gw502_agent_source_seconds` histogram (its metrics listener on 127.0.0.1:9502).
Prints a markdown report with ratios against `ss -tlnp` measured in the same
run. Environment: GW502_TARGET (default target/release), LISTENERS,
CONNECTIONS, ROUNDS (default 10), STEADY (default 120), UNITS (comma list of
systemd units the agent watches besides the discovered ones), SOURCES.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from footprint_sources import Sources

TARGET = os.environ.get("GW502_TARGET", "target/release")
LISTENERS = int(os.environ.get("LISTENERS", "1000"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "50000"))
ROUNDS = int(os.environ.get("ROUNDS", "10"))
STEADY = int(os.environ.get("STEADY", "120"))
UNITS = [u for u in os.environ.get("UNITS", "").split(",") if u]
NODE_EXPORTER = os.environ.get("NODE_EXPORTER", "")
SOURCES = [s for s in os.environ.get("SOURCES", "").split(",") if s]
METRICS = "127.0.0.1:9502"
TICK = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))


def timed(argv):
    """Runs argv and reaps it with wait4: (wall s, cpu s, max rss KiB), CPU
    to the microsecond (/usr/bin/time rounds it to 10 ms)."""
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{argv[0]} exited {p.returncode}")
    return time.time() - t0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def series(name, argv):
    runs = [timed(argv) for _ in range(ROUNDS)]
    med = lambda i: statistics.median(r[i] for r in runs)
    return {"name": name, "wall": med(0), "cpu": med(1), "rss": med(2)}


def ticks(pid, children=False):
    """utime+stime of pid, with children also cutime+cstime (reaped children)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    own = int(fields[11]) + int(fields[12])
    return own + int(fields[13]) + int(fields[14]) if children else own


def source_seconds():
    """Per source (sum s, count) of the agent's gw502_agent_source_seconds."""
    text = urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=10).read().decode()
    out = {}
    for m in re.finditer(r'^gw502_agent_source_seconds_(sum|count)\{source="([^"]+)"\} (\S+)$', text, re.M):
        kind, name, value = m.groups()
        out.setdefault(name, [0.0, 0.0])[0 if kind == "sum" else 1] = float(value)
    return out


def machine_ticks():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def rollup(pid):
    text = open(f"/proc/{pid}/smaps_rollup").read()
    get = lambda key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))
    return get("Rss"), get("Pss"), get("Anonymous")


def scrape_series(pid, port):
    """ROUNDS scrapes of node_exporter: median wall and exporter CPU per scrape."""
    import urllib.request
    walls, cpus = [], []
    for _ in range(ROUNDS):
        t0, w0 = ticks(pid), time.time()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60).read()
        walls.append(time.time() - w0)
        cpus.append((ticks(pid) - t0) / TICK)
    rss = rollup(pid)[0]
    return {"name": "node_exporter scrape (systemd collector on)", "wall": statistics.median(walls),
            "cpu": statistics.median(cpus), "rss": rss}


def wait_port(port, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        if subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True).stdout.strip():
            return
        time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def main():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = tempfile.mkdtemp(prefix="gw502-footprint-")
    ready = os.path.join(work, "ready")
    holder = subprocess.Popen([sys.executable, os.path.join(HERE, "hold_sockets.py"),
                               str(LISTENERS), str(CONNECTIONS), "8400", ready])
    procs = [holder]
    sources = Sources(work, SOURCES)
    try:
        started = time.time()
        while not os.path.exists(ready):
            if holder.poll() is not None or time.time() - started > 300:
                sys.exit("socket holders failed")
            time.sleep(0.2)
        listening = len(subprocess.run(["ss", "-Htln"], capture_output=True, text=True).stdout.splitlines())
        established = int(subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True).stdout.count("\n"))
        with open(os.path.join(work, "collector.toml"), "w") as f:
            f.write(f'listen = "127.0.0.1:7502"\ndatabase = "sqlite://{work}/c.db"\nid = "bench"\n[tls]\nplaintext = true\n')
        sources.start(wait_port)
        with open(os.path.join(work, "agent.toml"), "w") as f:
            units = ", ".join(f'"{u}"' for u in UNITS)
            metrics = f'metrics_listen = "{METRICS}"\n' if SOURCES else ""
            f.write(f'host_id = "bench"\ncollector = "http://127.0.0.1:7502"\ninterval = "10s"\nstate_dir = "{work}/agent"\nunits = [{units}]\n{metrics}[tls]\nplaintext = true\n{sources.config}')
        collector = subprocess.Popen([f"{TARGET}/gw502-collector", "run", "--config", f"{work}/collector.toml"],
                                     stdout=subprocess.DEVNULL, stderr=open(f"{work}/collector.log", "w"))
        procs.append(collector)
        wait_port(7502)
        ss = series("ss -tlnp", ["ss", "-tlnp"])
        peers = []
        if NODE_EXPORTER:
            exporter = subprocess.Popen([NODE_EXPORTER, "--collector.systemd", "--web.listen-address=127.0.0.1:9100"],
                                        stdout=subprocess.DEVNULL, stderr=open(f"{work}/node_exporter.log", "w"))
            procs.append(exporter)
            wait_port(9100)
            peers.append(scrape_series(exporter.pid, 9100))
        snap = series("gw502-agent snapshot", [f"{TARGET}/gw502-agent", "--config", f"{work}/agent.toml", "snapshot", "--json"])
        agent = subprocess.Popen([f"{TARGET}/gw502-agent", "--config", f"{work}/agent.toml", "run"],
                                 stdout=subprocess.DEVNULL, stderr=open(f"{work}/agent.log", "w"))
        procs.append(agent)
        sources.start_traffic()
        time.sleep(12)  # first (full) report and a warm owner cache
        per_source0 = source_seconds() if SOURCES else {}
        load0, m0 = open("/proc/loadavg").read().split()[:3], machine_ticks()
        t0, c0, w0 = ticks(agent.pid), ticks(agent.pid, True), time.time()
        samples = []
        while time.time() - w0 < STEADY:
            samples.append(rollup(agent.pid))
            time.sleep(1)
        t1, c1, w1 = ticks(agent.pid), ticks(agent.pid, True), time.time()
        m1 = machine_ticks()
        busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100
        per_source1 = source_seconds() if SOURCES else {}
        reports = (w1 - w0) / 10
        cpu = (t1 - t0) / TICK
        with_children = (c1 - c0) / TICK
        rss, pss, anon = (max(s[i] for s in samples) / 1024 for i in range(3))
        print(f"synthetic host: {listening} listening TCP sockets, {established} established, in a private netns\n")
        for line in sources.describe():
            print(f"- {line}")
        print(f"- machine during the steady state: load average {load0} at its start, "
              f"{open('/proc/loadavg').read().split()[:3]} at its end, {busy:.0f}% of its {os.cpu_count()} cores busy "
              f"(all processes, nice included)\n")
        print("| command | median wall ms | median CPU ms | max RSS MB | CPU ratio vs ss -tlnp |\n|---|---|---|---|---|")
        for s in (ss, snap, *peers):
            print(f"| `{s['name']}` | {s['wall']*1000:.0f} | {s['cpu']*1000:.0f} | {s['rss']/1024:.1f} | {s['cpu']/max(ss['cpu'], 0.001):.2f} |")
        print(f"\n`gw502-agent run`, 10 s interval, {w1-w0:.0f} s steady state after warm-up:\n")
        print("| RSS max MB | PSS max MB | RssAnon max MB | CPU per report ms | % of one core | per-report CPU ratio vs ss -tlnp |\n|---|---|---|---|---|---|")
        per = cpu / reports
        print(f"| {rss:.1f} | {pss:.1f} | {anon:.1f} | {per*1000:.0f} | {cpu/(w1-w0)*100:.2f} | {per/max(ss['cpu'], 0.001):.2f} |")
        per_all = with_children / reports
        print(f"\nwith the agent's child processes (varnishstat, varnishadm, varnishlog, config tests): {per_all*1000:.0f} ms CPU per report, "
              f"{with_children/(w1-w0)*100:.2f}% of one core\n")
        if "varnish" in SOURCES:
            print("| Varnish command, standalone, ring as the run left it | median wall ms | median CPU ms |\n|---|---|---|")
            for name, argv in sources.varnish_commands():
                s = series(name, argv)
                print(f"| `{name}` | {s['wall']*1000:.0f} | {s['cpu']*1000:.1f} |")
            print()
        if SOURCES:
            print("| source | reports | mean wall ms per report |\n|---|---|---|")
            for name in sorted(per_source1):
                s1, n1 = per_source1[name]
                s0, n0 = per_source0.get(name, [0.0, 0.0])
                if n1 > n0:
                    print(f"| {name} | {n1-n0:.0f} | {(s1-s0)/(n1-n0)*1000:.1f} |")
    finally:
        sources.stop()
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(os.path.join(work, "docker"), ignore_errors=True)


if __name__ == "__main__":
    main()
