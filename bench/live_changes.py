#!/usr/bin/env python3
"""Admin API change -> live on the proxy, measured.

Starts Silverback on the embedded SQLite store with ROUTES routes (imported with
`silverback config db_import`), puts a steady load on one route with wrk, and applies CHANGES
Admin API writes one after another (create a route, move it with PATCH, delete it). After each
2xx it polls the proxy until the change shows and records the time from the 2xx to the first
answer with the new behaviour. Reports p50/p99/max of that delay and what the load saw (every
non-2xx or socket error counts as a failed request).

    bench/live_changes.py [--routes 10000] [--changes 1000] [--workers 2]

Needs wrk and the upstream nginx of ../shared/bench/peers.sh (started here).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SILVERBACK_BENCH_SHARED", os.path.join(ROOT, "..", "shared", "bench"))
UPSTREAM = "127.0.0.1:19000"
PROXY_PORT = 19020
ADMIN_PORT = 19021


def config_text(routes):
    """One service per 10 routes; prefix paths, a host on every 3rd route, methods on every
    7th, a regex path with a capture on every 20th: the router's usual mix."""
    out = ['_format_version: "3.0"', "services:"]
    out += ["- name: steady", f"  url: http://{UPSTREAM}", "  routes:",
            "  - name: steady", "    paths: [/steady]"]
    for svc in range((routes + 9) // 10):
        out += [f"- name: svc{svc}", f"  url: http://{UPSTREAM}", "  routes:"]
        for r in range(svc * 10, min((svc + 1) * 10, routes)):
            out.append(f"  - name: r{r}")
            if r % 20 == 0:
                out.append(f'    paths: ["~/re{r}/(?<id>\\\\d+)$"]')
            else:
                out.append(f"    paths: [/p{r}]")
            if r % 3 == 0:
                out.append(f"    hosts: [h{r}.example.com]")
            if r % 7 == 0:
                out.append("    methods: [GET, POST]")
    return "\n".join(out) + "\n"


class Http:
    """A keep-alive HTTP/1.1 connection that reconnects when the server closes it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                headers = {"content-type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=None if body is None else json.dumps(body),
                                  headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, data
            except (http.client.HTTPException, ConnectionError, socket.timeout):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=10000)
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "silverback"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "silverback")
    if shutil.which("wrk") is None:
        subprocess.run(["bash", os.path.join(SHARED, "peers.sh"), "install"], check=True)
    subprocess.run(["bash", os.path.join(SHARED, "peers.sh"), "start"], check=True,
                   stdout=subprocess.DEVNULL)

    work = tempfile.mkdtemp(prefix="silverback-live.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SILVERBACK_")}
    env.update({
        "SILVERBACK_PREFIX": os.path.join(work, "prefix"),
        "SILVERBACK_DATABASE": "sqlite",
        "SILVERBACK_PROXY_LISTEN": f"127.0.0.1:{PROXY_PORT}",
        "SILVERBACK_ADMIN_LISTEN": f"127.0.0.1:{ADMIN_PORT}",
        "SILVERBACK_STATUS_LISTEN": "off",
        "SILVERBACK_WORKER_THREADS": str(args.workers),
        "SILVERBACK_LOG_LEVEL": "error",
    })
    kong_yml = os.path.join(work, "kong.yml")
    with open(kong_yml, "w") as f:
        f.write(config_text(args.routes))
    t0 = time.time()
    subprocess.run([binary, "migrations", "bootstrap"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([binary, "config", "db_import", kong_yml], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    print(f"imported {args.routes} routes in {time.time() - t0:.1f} s")

    gw = subprocess.Popen([binary, "start"], env=env)
    wrk = None
    try:
        t0 = time.time()
        wait_port(ADMIN_PORT)
        wait_port(PROXY_PORT)
        print(f"started with {args.routes} routes in {time.time() - t0:.2f} s")
        proxy, admin = Http(PROXY_PORT), Http(ADMIN_PORT)
        status, _ = proxy.request("GET", "/steady")
        assert status == 200, f"steady route answers {status}"

        # Steady load on a route that never changes, for the whole run.
        wrk = subprocess.Popen(
            ["wrk", "-t1", "-c8", "-d600s", "--latency", f"http://127.0.0.1:{PROXY_PORT}/steady"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1)

        delays = {"create": [], "update": [], "delete": []}
        n = 0
        started = time.time()
        while n < args.changes:
            i = n
            steps = [
                ("create", "POST", "/services/svc0/routes",
                 {"name": f"live{i}", "paths": [f"/live{i}"]}, f"/live{i}", 200),
                ("update", "PATCH", f"/routes/live{i}", {"paths": [f"/moved{i}"]},
                 f"/moved{i}", 200),
                ("delete", "DELETE", f"/routes/live{i}", None, f"/moved{i}", 404),
            ]
            for kind, method, path, body, probe, want in steps:
                if n >= args.changes:
                    break
                status, data = admin.request(method, path, body)
                acked = time.perf_counter()
                if status // 100 != 2:
                    sys.exit(f"{method} {path}: {status} {data[:200]!r}")
                while True:
                    got, _ = proxy.request("GET", probe)
                    if got == want:
                        break
                    if time.perf_counter() - acked > 10:
                        sys.exit(f"{kind} {probe}: still {got} after 10 s")
                delays[kind].append((time.perf_counter() - acked) * 1000)
                n += 1
        elapsed = time.time() - started

        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=30)
        wrk = None
        total = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        non2xx = int(non2xx.group(1)) if non2xx else 0
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        sock_errors = sum(int(x) for x in sock.groups()) if sock else 0
        p99_load = re.search(r"\s99%\s+(\S+)", out)

        all_delays = [d for v in delays.values() for d in v]
        print()
        print(f"{args.changes} Admin API changes with {args.routes} routes, "
              f"{elapsed:.1f} s, under load ({total} proxied requests)")
        print(f"{'change':<8} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for kind, v in list(delays.items()) + [("all", all_delays)]:
            if v:
                print(f"{kind:<8} {len(v):>6} {statistics.median(v):>8.1f} "
                      f"{percentile(v, 99):>8.1f} {max(v):>8.1f}")
        print(f"failed proxy requests during the changes: {non2xx + sock_errors} "
              f"(non-2xx {non2xx}, socket errors {sock_errors}); "
              f"load p99 {p99_load.group(1) if p99_load else '?'}")
        ok = percentile(all_delays, 99) < 100 and non2xx + sock_errors == 0
        print("target (p99 < 100 ms, no failed requests):", "met" if ok else "NOT met")
        return 0 if ok else 1
    finally:
        if wrk is not None:
            wrk.kill()
        gw.terminate()
        try:
            gw.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gw.kill()
        subprocess.run(["bash", os.path.join(SHARED, "peers.sh"), "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
