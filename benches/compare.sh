#!/usr/bin/env bash
# Run the same workloads against the reference broker and Mosquitto, side by side, and print a
# ratio table (throughput ref/mosquitto, p99 of both, broker RSS). Then the cost of persistence:
# QoS 1 with persistent sessions (Session Expiry 300 s) against the reference broker without and
# with `persistence = "path"` (every QoS 1 message for a persistent session committed to disk
# before it is acknowledged, group commit), in a second table.
#
# Usage: benches/compare.sh            (from anywhere in the repository)
# Environment:
#   BENCH_DURATION   length of each throughput workload (default 10s)
#   BENCH_IDLE       idle connections in the memory workload (default 10000)
#   BENCH_PROTOCOL   3.1.1 or 5 (default 5)
#   BENCH_OUT        directory for the raw JSON reports (default: target/bench-compare)
#   BENCH_ONLY       run only the workloads whose name matches this extended regex
#   BENCH_PERSIST_DIR  where the persistent broker keeps its store (default: a temporary
#                    directory; point it at the disk you want to measure)
#   MOSQUITTO        Mosquitto binary (default: mosquitto on PATH, then /usr/sbin/mosquitto)
#
# Each broker is started fresh for each workload, on a free 127.0.0.1 port, with its default
# settings (Mosquitto: anonymous access on, persistence off, no connection limit).
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-10s}
IDLE=${BENCH_IDLE:-10000}
PROTOCOL=${BENCH_PROTOCOL:-5}
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

for tool in jq python3 "$MOSQUITTO"; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found" >&2; exit 2; }
done

echo "building release binaries..." >&2
cargo build --release -q -p mqtt-conformance -p reference-broker --bins
BENCH="$TARGET_DIR/release/mqtt-conformance"
REF="$TARGET_DIR/release/reference-broker"

WORK=$(mktemp -d)
PERSIST_DIR=${BENCH_PERSIST_DIR:-$WORK/persist}
ONLY=${BENCH_ONLY:-}
OUT=${BENCH_OUT:-$TARGET_DIR/bench-compare}
mkdir -p "$OUT"
BROKER_PID=""
stop_broker() {
    if [[ -n "$BROKER_PID" ]]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=""
    fi
}
trap 'stop_broker; rm -rf "$WORK"' EXIT

# Thousands of connections: both the brokers and the bench need descriptors.
ulimit -n "$(ulimit -Hn)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port: wait up to 10 s for it to accept
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "compare.sh: nothing listens on port $1" >&2
    return 1
}

# ref_url: wait for the reference broker to print its address; sets BROKER_URL
ref_url() {
    local addr=""
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$WORK/ref.out" | head -n1 || true)
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || { echo "compare.sh: reference broker did not start" >&2; cat "$WORK/ref.err" >&2; exit 2; }
    BROKER_URL="mqtt://$addr"
}

# start_broker NAME: sets BROKER_PID and BROKER_URL
start_broker() {
    case "$1" in
    reference)
        : >"$WORK/ref.out"
        "$REF" --listen 127.0.0.1:0 >"$WORK/ref.out" 2>"$WORK/ref.err" &
        BROKER_PID=$!
        ref_url
        ;;
    reference-persist)
        : >"$WORK/ref.out"
        rm -rf "$PERSIST_DIR/store"
        mkdir -p "$PERSIST_DIR"
        printf 'persistence = "%s/store"\n' "$PERSIST_DIR" >"$WORK/persist.toml"
        "$REF" --config "$WORK/persist.toml" --listen 127.0.0.1:0 >"$WORK/ref.out" 2>"$WORK/ref.err" &
        BROKER_PID=$!
        ref_url
        ;;
    mosquitto)
        local port
        port=$(free_port)
        cat >"$WORK/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_connections -1
log_dest none
EOF
        "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosq.out" 2>&1 &
        BROKER_PID=$!
        wait_port "$port"
        BROKER_URL="mqtt://127.0.0.1:$port"
        ;;
    esac
}

# name | bench arguments. Unlimited rates measure throughput (and losses under overload);
# the @20k and @30k variants offer both brokers the same load, so their p99 latencies compare
# (30k is close to what Mosquitto sustains here).
WORKLOADS=(
    "qos0-fan-in|--pubs 8 --subs 1 --qos 0 --pattern fan-in --duration $DURATION"
    "qos1-fan-in|--pubs 8 --subs 1 --qos 1 --pattern fan-in --inflight 20 --duration $DURATION"
    "qos0-fan-in@20k|--pubs 8 --subs 1 --qos 0 --pattern fan-in --rate 20000 --duration $DURATION"
    "qos1-fan-in@20k|--pubs 8 --subs 1 --qos 1 --pattern fan-in --inflight 20 --rate 20000 --duration $DURATION"
    "qos1-fan-in@30k|--pubs 8 --subs 1 --qos 1 --pattern fan-in --inflight 20 --rate 30000 --duration $DURATION"
    "qos1-fan-out|--pubs 1 --subs 16 --qos 1 --pattern fan-out --inflight 20 --duration $DURATION"
    "idle-$IDLE|--pubs 0 --subs 0 --idle $IDLE --duration 5s"
)

# QoS 1 with persistent sessions, reference broker only: persistence off, then on.
PERSIST_WORKLOADS=(
    "qos1-fan-in-sessions|--pubs 8 --subs 1 --qos 1 --pattern fan-in --inflight 20 --session-expiry 300 --duration $DURATION"
    "qos1-fan-out-sessions|--pubs 1 --subs 16 --qos 1 --pattern fan-out --inflight 20 --session-expiry 300 --duration $DURATION"
)

selected() { [[ -z "$ONLY" || "$1" =~ $ONLY ]]; }

# run_workloads "BROKER_A BROKER_B" WORKLOAD...: each workload against each broker, fresh
run_workloads() {
    local brokers=$1
    shift
    for w in "$@"; do
        name=${w%%|*}
        args=${w#*|}
        selected "$name" || continue
        for broker in $brokers; do
            start_broker "$broker"
            echo "$name against $broker ($BROKER_URL)..." >&2
            # shellcheck disable=SC2086
            if ! "$BENCH" bench --broker "$BROKER_URL" --broker-pid "$BROKER_PID" --protocol "$PROTOCOL" \
                --json --no-progress $args >"$OUT/$name.$broker.json"; then
                echo "compare.sh: $name against $broker failed" >&2
                echo '{}' >"$OUT/$name.$broker.json"
            fi
            stop_broker
        done
    done
}

# table A B LABEL_A LABEL_B WORKLOAD...: throughput, ratio A/B, p99, losses and RSS side by side
table() {
    local a=$1 b=$2 la=$3 lb=$4
    shift 4
    printf '%-22s %12s %12s %7s %9s %9s %9s %9s %10s %10s\n' \
        workload "$la msg/s" "$lb msg/s" ratio "$la p99" "$lb p99" "$la lost" "$lb lost" "$la RSS" "$lb RSS"
    for w in "$@"; do
        name=${w%%|*}
        selected "$name" || continue
        r="$OUT/$name.$a.json"
        m="$OUT/$name.$b.json"
        jq -r -n --slurpfile r "$r" --slurpfile m "$m" --arg name "$name" '
            def num(x): if x == null then 0 else x end;
            def mib(x): if x == null then "-" else ((x / 1024 * 10 | round) / 10 | tostring) + " MiB" end;
            def us(x): if x == null then "-" else ((x / 100 | round) / 10 | tostring) + " ms" end;
            ($r[0]) as $a | ($m[0]) as $b |
            [ $name,
              (num($a.msgs_per_sec) | round | tostring),
              (num($b.msgs_per_sec) | round | tostring),
              (if num($b.msgs_per_sec) > 0 then ((num($a.msgs_per_sec) / $b.msgs_per_sec * 100 | round) / 100 | tostring) + "x" else "-" end),
              (if num($a.received) > 0 then us($a.p99_us) else "-" end),
              (if num($b.received) > 0 then us($b.p99_us) else "-" end),
              (num($a.lost) | tostring), (num($b.lost) | tostring),
              mib($a.rss_max_kib), mib($b.rss_max_kib) ] | @tsv' |
            awk -F'\t' '{ printf "%-22s %12s %12s %7s %9s %9s %9s %9s %10s %10s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10 }'
    done
}

run_workloads "reference mosquitto" "${WORKLOADS[@]}"
run_workloads "reference reference-persist" "${PERSIST_WORKLOADS[@]}"

echo
echo "MQTT $PROTOCOL, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); reference vs Mosquitto $("$MOSQUITTO" -h 2>/dev/null | sed -n 's/^mosquitto version //p')"
table reference mosquitto ref mosq "${WORKLOADS[@]}"
echo
echo "persistence: reference broker with persistent sessions, persistence on vs off (store in $PERSIST_DIR)"
table reference-persist reference "on" "off" "${PERSIST_WORKLOADS[@]}"
echo "raw reports: $OUT" >&2
