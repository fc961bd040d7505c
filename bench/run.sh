#!/usr/bin/env bash
# Side-by-side proxy benchmark: Silverback against nginx, nginx+Lua (Kong-style key-auth +
# rate-limit in Lua) and HAProxy, all with one worker, in front of the same upstream nginx.
# HTTPS (keepalive): Silverback terminating TLS against nginx terminating TLS (nginx-tls.conf
# here), same certificate, same upstream.
# The rate-limiting redis routes (with and without sync_rate) need a Redis at 127.0.0.1:6379
# (they use database 15).
# Uses ../shared/bench (peers.sh, compare.py). Prints req/s, p99, CPU µs per request and ratios.
#   bench/run.sh [--https-only] [--pin] [--rounds N] [--duration S] [--connections C]
# SB_BENCH_BIN=<binary> skips the release build (to check the script, not to measure).
# --https-only: only the plain and HTTPS no-plugin routes (the peers are always measured).
# --pin: wrk on CPU 0; every proxy (Silverback and the peers) and the upstream nginx on CPU 1.
#   Unpinned, the scheduler moves the three busy processes over two cores, and where it puts
#   them moves the figures by 5-10% between runs; pinned, each proxy shares one core with
#   the same upstream, so req/s also compares the proxies' cost.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SILVERBACK_BENCH_SHARED:-$root/../shared/bench}
work=$(mktemp -d /tmp/silverback-bench.XXXXXX)
port=19010
tls_port=19011
nginx_tls_port=19004
https_only=0
pin=0
args=()
for a in "$@"; do
  case "$a" in
    --https-only) https_only=1 ;;
    --pin) pin=1 ;;
    *) args+=("$a") ;;
  esac
done
if [ "$pin" = 1 ] && [ "$(nproc)" -lt 2 ]; then
  echo "--pin needs at least 2 CPUs" >&2
  exit 1
fi

need_install=0
command -v wrk >/dev/null || need_install=1
command -v haproxy >/dev/null || need_install=1
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need_install=1
if [ "$need_install" = 1 ]; then
  bash "$shared/peers.sh" install
  # The Lua module is sometimes left unpacked by the first install; make sure it is there.
  [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall libnginx-mod-http-lua >/dev/null
fi

# SB_BENCH_BIN: a binary already built (checking the script); else the release build.
bin=${SB_BENCH_BIN:-$root/target/release/silverback}
[ -n "${SB_BENCH_BIN:-}" ] || (cd "$root" && cargo build --release -q -p silverback)
# Stale peers from an earlier run would share the ports (reuseport) and skew the CPU figures.
bash "$shared/peers.sh" stop >/dev/null 2>&1 || true
for p in 19000 19001 19002 19003 "$port" "$tls_port" "$nginx_tls_port"; do
  for pid in $(ss -ltnpH "sport = :$p" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    kill "$pid" 2>/dev/null || true
  done
done
sleep 0.5
bash "$shared/peers.sh" start

# One certificate for both TLS terminators (ECDSA P-256, what Silverback generates by default).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj /CN=bench.test -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
sed -e "s#@DIR@#$work#g" -e "s#@CERT@#$work/tls.crt#g" -e "s#@KEY@#$work/tls.key#g" \
  "$root/bench/nginx-tls.conf" > "$work/nginx-tls.conf"
nginx -p "$work" -c "$work/nginx-tls.conf"

# One route per plugin set under test, same service: the no-plugin route is the baseline the
# plugin routes' added CPU is measured against. compare.py sends `apikey: bench-key` with every
# request (the nginx+Lua peer checks it too) and, from here, a Basic Authorization header; the
# JWTs (HS256, and RS256 with a fresh key pair) go in the `jwt` query argument.
openssl genrsa -out "$work/rsa.pem" 2048 2>/dev/null
openssl rsa -in "$work/rsa.pem" -pubout -out "$work/rsa.pub" 2>/dev/null
jwt() { # alg, key id; signs {"iss": key id} with the bench secret or the RSA key
  python3 - "$1" "$2" "$work/rsa.pem" <<'PY'
import base64, hashlib, hmac, json, subprocess, sys
alg, iss, pem = sys.argv[1:4]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
signing = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + b64(json.dumps({"iss": iss}).encode())
if alg == "HS256":
    sig = hmac.new(b"bench-secret", signing.encode(), hashlib.sha256).digest()
else:
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pem], input=signing.encode(),
                         capture_output=True, check=True).stdout
print(signing + "." + b64(sig))
PY
}
hs_token=$(jwt HS256 bench-hs)
rs_token=$(jwt RS256 bench-rs)
cat > "$work/kong.yml" <<YAML
_format_version: "3.0"
consumers:
- username: bench
  keyauth_credentials:
  - key: bench-key
  basicauth_credentials:
  - username: bench
    password: bench-pass
  jwt_secrets:
  - key: bench-hs
    algorithm: HS256
    secret: bench-secret
  - key: bench-rs
    algorithm: RS256
    rsa_public_key: |
$(sed 's/^/      /' "$work/rsa.pub")
services:
- name: bench
  url: http://127.0.0.1:19000
  routes:
  - name: bench
    paths: [/]
  - name: key-auth
    paths: [/key-auth]
    plugins:
    - name: key-auth
  - name: jwt
    paths: [/jwt]
    plugins:
    - name: jwt
  - name: basic-auth
    paths: [/basic-auth]
    plugins:
    - name: basic-auth
  - name: key-auth-rate-limiting
    paths: [/key-auth-rl]
    plugins:
    - name: key-auth
    - name: rate-limiting
      config: {second: 1000000000, limit_by: consumer}
  - name: prometheus
    paths: [/prometheus]
    plugins:
    - name: prometheus
      config:
        per_consumer: true
        status_code_metrics: true
        latency_metrics: true
        bandwidth_metrics: true
        upstream_health_metrics: true
  # The same with the redis policy: one script round trip to the local Redis per request.
  - name: key-auth-rate-limiting-redis
    paths: [/key-auth-rl-redis]
    plugins:
    - name: key-auth
    - name: rate-limiting
      config:
        second: 1000000000
        limit_by: consumer
        policy: redis
        redis: {host: 127.0.0.1, port: 6379, database: 15}
  # The redis policy with sync_rate: counted in the gateway, synced to Redis every 0.1 s by a
  # background task, so requests make no Redis round trip.
  - name: key-auth-rate-limiting-redis-sync
    paths: [/key-auth-rl-redis-sync]
    plugins:
    - name: key-auth
    - name: rate-limiting
      config:
        second: 1000000000
        limit_by: consumer
        policy: redis
        sync_rate: 0.1
        redis: {host: 127.0.0.1, port: 6379, database: 15}
YAML

# setsid: its own session, as the peers have (nginx and HAProxy daemonize). With the kernel's
# autogroup scheduling (sched_autogroup_enabled) a session is one CPU-share group: left in this
# script's session, Silverback would split one group's weight with wrk on the other CPU and get
# less of its CPU than the upstream nginx it is pinned with (seen: 49k req/s instead of 60k, and
# 1.18x nginx's CPU per request instead of 1.0x).
SILVERBACK_PREFIX="$work/prefix" \
SILVERBACK_DATABASE=off \
SILVERBACK_DECLARATIVE_CONFIG="$work/kong.yml" \
SILVERBACK_PROXY_LISTEN="127.0.0.1:$port, 127.0.0.1:$tls_port ssl" \
SILVERBACK_SSL_CERT="$work/tls.crt" \
SILVERBACK_SSL_CERT_KEY="$work/tls.key" \
SILVERBACK_STATUS_LISTEN=off \
SILVERBACK_ADMIN_LISTEN=off \
SILVERBACK_WORKER_THREADS=1 \
SILVERBACK_LOG_LEVEL=error \
  setsid "$bin" start &
sb=$!
cleanup() {
  kill "$sb" 2>/dev/null || true
  wait "$sb" 2>/dev/null || true
  [ -f "$work/nginx-tls.pid" ] && kill "$(cat "$work/nginx-tls.pid")" 2>/dev/null || true
  bash "$shared/peers.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/" &&
    curl -sfk -o /dev/null "https://127.0.0.1:$tls_port/" &&
    curl -sfk -o /dev/null "https://127.0.0.1:$nginx_tls_port/" && break
  kill -0 "$sb" 2>/dev/null || { echo "silverback exited" >&2; exit 1; }
  sleep 0.1
done

nginx_tls=$(cat "$work/nginx-tls.pid")
targets=(
  "silverback=$sb=http://127.0.0.1:$port/"
  "nginx-https=$nginx_tls=https://127.0.0.1:$nginx_tls_port/"
  "sb-https=$sb=https://127.0.0.1:$tls_port/"
)
if [ "$https_only" = 0 ]; then
  targets+=(
    "sb+key-auth=$sb=http://127.0.0.1:$port/key-auth"
    "sb+jwt-hs256=$sb=http://127.0.0.1:$port/jwt?jwt=$hs_token"
    "sb+jwt-rs256=$sb=http://127.0.0.1:$port/jwt?jwt=$rs_token"
    "sb+basic-auth=$sb=http://127.0.0.1:$port/basic-auth"
    "sb+key-auth+rl=$sb=http://127.0.0.1:$port/key-auth-rl"
    "sb+prometheus=$sb=http://127.0.0.1:$port/prometheus"
    "sb+key-auth+rl-redis=$sb=http://127.0.0.1:$port/key-auth-rl-redis"
    "sb+key-auth+rl-redis-sync=$sb=http://127.0.0.1:$port/key-auth-rl-redis-sync"
  )
fi
runner=()
if [ "$pin" = 1 ]; then
  peers_dir=${PEERS_DIR:-/tmp/gateway-peers}
  for pid in "$sb" "$nginx_tls" $(cat "$peers_dir"/*.pid); do
    for p in "$pid" $(pgrep -P "$pid" || true); do
      taskset -a -pc 1 "$p" >/dev/null
    done
  done
  runner=(taskset -c 0)
fi
${runner[@]+"${runner[@]}"} python3 "$shared/compare.py" \
  --header "Authorization: Basic $(printf bench:bench-pass | base64)" \
  ${args[@]+"${args[@]}"} "${targets[@]}" | tee "$work/out.txt"

# The added CPU per request of each plugin route over the no-plugin route, and its throughput.
python3 - "$work/out.txt" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 5 and f[1].replace('.', '').isdigit():
        rows[f[0]] = (float(f[1]), float(f[3]))
base = rows.get("silverback")
tls, nginx_tls = rows.get("sb-https"), rows.get("nginx-https")
if tls and nginx_tls:
    print(f"HTTPS: Silverback {tls[1]:.1f} us CPU per request, nginx {nginx_tls[1]:.1f} us "
          f"({tls[1] / nginx_tls[1]:.2f}x); req/s {tls[0] / nginx_tls[0]:.2f}x of nginx's")
if base:
    for name, (rps, cpu) in rows.items():
        if name.startswith("sb+"):
            print(f"{name[3:]}: +{cpu - base[1]:.1f} us CPU per request over no plugin; "
                  f"throughput {rps / base[0]:.2f}x of the no-plugin route")
PY
