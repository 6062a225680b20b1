#!/usr/bin/env bash
# A throwaway Redis Cluster on loopback for tests and benchmarks (needs redis-server and
# redis-cli, Debian package redis-server).
#
#   scripts/redis-cluster.sh start DIR [PORTS]   # default ports 7101,7102,7103 (3 masters)
#   scripts/redis-cluster.sh stop DIR
#   scripts/redis-cluster.sh urls DIR            # redis://127.0.0.1:P,... of the running nodes
#   scripts/redis-cluster.sh kill DIR PORT       # stop one node (fault tests)
#   scripts/redis-cluster.sh revive DIR PORT     # start it again (its data from a SAVE before)
#   scripts/redis-cluster.sh pause DIR PORT      # SIGSTOP one node (a node that does not answer)
#   scripts/redis-cluster.sh resume DIR PORT     # SIGCONT it
#
# Nodes run with cluster-require-full-coverage no, so a dead master fails only its own slots,
# and without persistence beyond their nodes.conf. `start` prints the URLs on its last line.
set -euo pipefail

cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,15p' "$0"; exit 2; }

node_conf() { # port
  local port="$1" d="$dir/$1"
  mkdir -p "$d"
  cat >"$d/redis.conf" <<CONF
port $port
bind 127.0.0.1
protected-mode yes
daemonize yes
dir $d
pidfile $d/redis.pid
logfile $d/redis.log
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
cluster-require-full-coverage no
cluster-allow-reads-when-down yes
appendonly no
save ""
CONF
}

start_node() { # port
  redis-server "$dir/$1/redis.conf"
  for _ in $(seq 1 100); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis node on port $1 did not start; log:" >&2
  tail -n 20 "$dir/$1/redis.log" >&2
  return 1
}

urls() {
  local out=""
  for p in $(cat "$dir/ports"); do out="${out:+$out,}redis://127.0.0.1:$p"; done
  echo "$out"
}

case "$cmd" in
  start)
    ports="${3:-7101,7102,7103}"
    mkdir -p "$dir"
    echo "$ports" | tr ',' ' ' >"$dir/ports"
    hosts=()
    for p in $(cat "$dir/ports"); do
      node_conf "$p"
      start_node "$p"
      hosts+=("127.0.0.1:$p")
    done
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 || {
      cat "$dir/create.log" >&2; exit 1; }
    first="$(head -c 100 "$dir/ports" | awk '{print $1}')"
    for _ in $(seq 1 200); do
      if redis-cli -p "$first" cluster info 2>/dev/null | grep -q "cluster_state:ok"; then
        urls; exit 0
      fi
      sleep 0.05
    done
    echo "cluster did not reach state ok" >&2; exit 1
    ;;
  stop)
    [ -f "$dir/ports" ] || exit 0
    for p in $(cat "$dir/ports"); do
      if [ -f "$dir/$p/redis.pid" ]; then
        pid="$(cat "$dir/$p/redis.pid")"
        kill -CONT "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
      fi
    done
    ;;
  urls) urls ;;
  kill)
    p="${3:?port}"
    pid="$(cat "$dir/$p/redis.pid")"
    kill -9 "$pid"
    rm -f "$dir/$p/redis.pid"
    ;;
  revive)
    p="${3:?port}"
    start_node "$p"
    ;;
  pause) kill -STOP "$(cat "$dir/${3:?port}/redis.pid")" ;;
  resume) kill -CONT "$(cat "$dir/${3:?port}/redis.pid")" ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
