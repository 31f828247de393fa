"""The new sources for bench/agent_footprint.py (knob SOURCES=containers,varnish):
a throwaway Docker Engine with a few containers and a loopback varnishd with
one live and one dead backend and steady traffic, all inside the bench's
private network namespace, with every file under the bench's work dir.

- containers: `dockerd --iptables=false --ip-masq=false` with its own
  `--data-root`, `--exec-root` and `-H unix://WORK/docker.sock`; an image
  `gw502/empty:1` made by `docker import` from a tar of empty directories;
  containers bind-mount the host's /usr, /lib, /lib64, /bin read-only (as in
  agent/fixtures/docker/README.md): DOCKER_WEB (default 3) `python3 -m
  http.server` with a published loopback port, one crash loop (`--restart
  always`, prints an ERROR line, exits 3), one unhealthy (`--health-cmd`
  failing every 2 s). The agent reads the engine through `[containers]`.
- varnish: `varnishd -n WORK/varnish -a 127.0.0.1:6081 -T 127.0.0.1:6082 -S
  WORK/secret` with a VCL of two probed backends: `live` (a python
  http.server on 127.0.0.1:8080) and `dead` (127.0.0.1:8089, nothing
  listens). The agent finds it like on a Debian host, through a unit file:
  its `[roots] etc` is WORK/etc, where every entry of /etc is a symlink
  except `varnish` (the VCL) and `systemd/system/varnish.service` (whose
  ExecStart names the same -n/-T/-S/-f). During the steady state a thread
  sends VARNISH_RPS (default 20) requests per second to varnishd, every
  VARNISH_DEAD_EVERY-th (default 10; 0: none, a healthy site) to the dead
  backend, so the log ring grows and holds FetchErrors.
  VARNISH_FILL (default 0) requests are sent first, from 8 threads, before
  the agent starts, to fill the log ring (80 MB by default, about 27,000 of
  these requests), since reading the ring costs in proportion to its fill.
  `measure_commands` times, standalone and with the ring as the run left it,
  each Varnish command the agent may run per report.
All argv lists; nothing is built into a shell string.
"""
import os
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.request

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
DOCKER_WEB = int(os.environ.get("DOCKER_WEB", "3"))
VARNISH_RPS = int(os.environ.get("VARNISH_RPS", "20"))
VARNISH_FILL = int(os.environ.get("VARNISH_FILL", "0"))
VARNISH_DEAD_EVERY = int(os.environ.get("VARNISH_DEAD_EVERY", "10"))
RECORDS = "Begin,Timestamp,ReqHeader,RespStatus,BereqURL,BereqHeader,BackendOpen,FetchError,BerespStatus"
STAT_FIELDS = ["MAIN.fetch_failed", "MAIN.backend_fail", "MAIN.backend_unhealthy", "MAIN.backend_busy",
               "MAIN.n_backend", "VBE.*.happy"]
HOST_MOUNTS = ["/usr", "/lib", "/lib64", "/bin"]

VCL = """vcl 4.1;
probe up { .url = "/"; .interval = 5s; .timeout = 1s; .window = 3; .threshold = 2; }
backend live { .host = "127.0.0.1"; .port = "8080"; .probe = up; }
backend dead { .host = "127.0.0.1"; .port = "8089"; .probe = up; }
sub vcl_recv {
    if (req.url ~ "^/dead") { set req.backend_hint = dead; } else { set req.backend_hint = live; }
    return (pass);
}
"""


class Sources:
    """Starts the requested sources; `stop` undoes everything it started."""

    def __init__(self, work, names):
        self.work, self.names = work, set(names)
        self.procs, self.config, self.stopping = [], "", threading.Event()
        self.sent = self.failed = 0

    def spawn(self, argv, log):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, log), "w"))
        self.procs.append(p)
        return p

    def docker(self, *args, stdin=None):
        return subprocess.run([DOCKER, "-H", f"unix://{self.work}/docker.sock", *args],
                              stdin=stdin, capture_output=True, text=True, check=True).stdout

    def start(self, wait_port):
        if "containers" in self.names:
            self.start_docker()
        if "varnish" in self.names:
            self.start_varnish(wait_port)

    def start_docker(self):
        w = self.work
        self.spawn(["dockerd", "--data-root", f"{w}/docker/data", "--exec-root", f"{w}/docker/exec",
                    "-H", f"unix://{w}/docker.sock", "--pidfile", f"{w}/docker/pid",
                    "--iptables=false", "--ip-masq=false"], "dockerd.log")
        end = time.time() + 60
        while subprocess.run([DOCKER, "-H", f"unix://{w}/docker.sock", "version"],
                             capture_output=True).returncode != 0:
            if time.time() > end:
                raise SystemExit("dockerd did not answer")
            time.sleep(0.5)
        empty = os.path.join(w, "image.tar")
        with tarfile.open(empty, "w") as tar:
            for d in ["usr", "lib", "lib64", "bin", "tmp", "proc", "sys", "dev", "etc"]:
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
        with open(empty, "rb") as f:
            self.docker("import", "-", "gw502/empty:1", stdin=f)
        mounts = [a for m in HOST_MOUNTS for a in ("-v", f"{m}:{m}:ro")]
        for i in range(DOCKER_WEB):
            self.docker("run", "-d", "--name", f"web{i}", "-p", f"127.0.0.1:{8180 + i}:8000", *mounts,
                        "gw502/empty:1", "python3", "-m", "http.server", "8000")
        self.docker("run", "-d", "--name", "loop", "--restart", "always", *mounts, "gw502/empty:1",
                    "python3", "-c", "import sys; print('ERROR boom', flush=True); sys.exit(3)")
        self.docker("run", "-d", "--name", "sick", "--health-cmd", "python3 -c 'raise SystemExit(1)'",
                    "--health-interval", "2s", *mounts, "gw502/empty:1", "python3", "-m", "http.server", "8000")
        self.config += f'[containers]\nsocket = "{w}/docker.sock"\n'

    def start_varnish(self, wait_port):
        w = self.work
        os.chmod(w, 0o755)  # varnishd's worker user reaches its -n dir
        etc = os.path.join(w, "etc")
        os.makedirs(os.path.join(etc, "varnish"))
        os.makedirs(os.path.join(etc, "systemd", "system"))
        for name in os.listdir("/etc"):
            if name not in ("varnish", "systemd"):
                os.symlink(os.path.join("/etc", name), os.path.join(etc, name))
        vcl = os.path.join(etc, "varnish", "default.vcl")
        with open(vcl, "w") as f:
            f.write(VCL)
        with open(os.path.join(w, "secret"), "w") as f:
            f.write("gw502-bench-secret\n")
        argv = ["/usr/sbin/varnishd", "-n", f"{w}/varnish", "-a", "127.0.0.1:6081", "-T", "127.0.0.1:6082",
                "-S", f"{w}/secret", "-f", vcl, "-s", "malloc,64m"]
        with open(os.path.join(etc, "systemd", "system", "varnish.service"), "w") as f:
            f.write("[Service]\nType=simple\nExecStart=" + " ".join(argv + ["-F"]) + "\n")
        self.spawn([shutil.which("python3"), "-m", "http.server", "--bind", "127.0.0.1", "8080"], "backend.log")
        wait_port(8080)
        self.spawn(argv + ["-F"], "varnishd.log")
        wait_port(6081)
        self.config += f'[roots]\netc = "{etc}"\n'
        if VARNISH_FILL > 0:
            self.fill(VARNISH_FILL)

    def fill(self, total):
        def send(start):
            for n in range(start, total, 8):
                path = f"/dead/{n}" if n % 10 == 0 else f"/?n={n}"
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:6081{path}", timeout=5).read()
                except OSError:
                    pass
        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.sent += total

    def varnish_commands(self):
        """The argv of each Varnish command the agent may run per report."""
        n = ["-n", f"{self.work}/varnish"]
        stat = ["varnishstat", *n, "-t", "2", "-1", "-j"] + [a for f in STAT_FIELDS for a in ("-f", f)]
        return [("varnishstat -1 -j -f … (every report)", stat),
                ("varnishadm backend.list -j", ["varnishadm", "-T", "127.0.0.1:6082", "-S", f"{self.work}/secret",
                                                 "-t", "2", "backend.list", "-j"]),
                ("varnishlog -d -g request -q FetchError", ["varnishlog", *n, "-d", "-t", "2", "-g", "request",
                                                           "-q", "FetchError", "-i", RECORDS])]

    def start_traffic(self):
        if "varnish" in self.names and VARNISH_RPS > 0:
            threading.Thread(target=self.traffic, daemon=True).start()

    def traffic(self):
        n = 0
        while not self.stopping.is_set():
            t0 = time.time()
            for _ in range(VARNISH_RPS):
                n += 1
                dead = VARNISH_DEAD_EVERY > 0 and n % VARNISH_DEAD_EVERY == 0
                path = f"/dead/{n}" if dead else f"/?n={n}"
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:6081{path}", timeout=5).read()
                except OSError:
                    self.failed += 1
                self.sent += 1
            self.stopping.wait(max(0.0, 1 - (time.time() - t0)))

    def describe(self):
        out = []
        if "containers" in self.names:
            ps = self.docker("ps", "-a", "--format", "{{.Names}} {{.Status}}").strip().splitlines()
            out.append(f"Docker Engine: {len(ps)} containers ({'; '.join(sorted(ps))})")
        if "varnish" in self.names:
            out.append(f"varnishd: {self.sent} requests sent in the run ({self.failed} answered with an error), "
                       f"{VARNISH_RPS}/s, " + (f"one in {VARNISH_DEAD_EVERY} to a dead backend" if VARNISH_DEAD_EVERY
                                               else "none to the dead backend")
                       + (f", after {VARNISH_FILL} requests filling the log ring" if VARNISH_FILL else ""))
        return out

    def stop(self):
        self.stopping.set()
        if "containers" in self.names and self.procs:
            ids = subprocess.run([DOCKER, "-H", f"unix://{self.work}/docker.sock", "ps", "-aq"],
                                 capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run([DOCKER, "-H", f"unix://{self.work}/docker.sock", "rm", "-f", *ids],
                               capture_output=True)
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
