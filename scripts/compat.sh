#!/usr/bin/env bash
# Run every suite against each broker this machine can run, keep each run's JSON and JUnit
# report under reports/compat/, and regenerate the README compatibility table (between the
# `compat:begin` / `compat:end` markers) and reports/compat/table.md.
#
# Brokers (a broker that is not installed is left out of the table, with a note saying how to
# install it):
#   reference            the in-process reference broker
#   mosquitto ...        /usr/sbin/mosquitto (apt-get install mosquitto mosquitto-clients) in four
#                        configurations: default; password_file + allow_anonymous false; max_qos 0;
#                        max_inflight_messages 1 + max_keepalive 10 + retain_available false +
#                        allow_zero_length_clientid false
#   amqtt 0.12.1         `amqtt` on PATH or $AMQTT (pip install amqtt==0.12.1); MQTT 3.1.1 only
#   rumqttd 0.20         `rumqttd` on PATH or $RUMQTTD (cargo install rumqttd --version ^0.20);
#                        its 3.1.1 listener and its 5 listener, one row
#   ejabberd 23.01       /usr/sbin/ejabberdctl (apt-get install ejabberd): its mod_mqtt listener,
#                        MQTT 3.1.1 and 5, internal authentication with one registered user
#   rabbitmq 3.10        /usr/lib/rabbitmq/bin/rabbitmq-server (apt-get install rabbitmq-server):
#                        the rabbitmq_mqtt plugin, MQTT 3.1.1 only, anonymous
#   mqttools 0.50.0      `mqttools` on PATH or $MQTTOOLS (pip install mqttools==0.50.0): its
#                        `mqttools broker`, MQTT 5 only
#   reference (container) the reference-broker binary in a local FROM-scratch image (needs Docker)
# Every failure left in a row is triaged in docs/compat/<broker>.md.
# Usage: scripts/compat.sh [--only LABEL-SUBSTRING]
set -euo pipefail
cd "$(dirname "$0")/.."

only=
if [ "${1:-}" = "--only" ]; then only=${2:-}; fi

out=reports/compat
mkdir -p "$out"
work=$(mktemp -d)
# Mosquitto started as root drops to its own user, which must read the password file.
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cargo build -q -p mqtt-conformance --bin mqtt-conformance
cargo build -q -p reference-broker --bin reference-broker
bin=target/debug/mqtt-conformance
notes=()
: >"$out/rows"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# wait_exit PID: until the process has exited (at most 10 s), so that the next broker does not
# meet the previous one's Erlang node or ports.
wait_exit() {
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
}

# slug LABEL: a file name for a row label.
slug() { echo "$1" | tr -c 'a-zA-Z0-9.\n' '-' | tr -s '-'; }

# run LABEL ARGS...: one run of every suite; appends "LABEL<TAB>json files" to the rows file.
# Several calls with the same LABEL (e.g. two listeners of one broker) make one row.
run() {
  local label=$1
  shift
  if [ -n "$only" ] && [[ "$label" != *"$only"* ]]; then return 0; fi
  local file
  file="$out/$(slug "$label").$(date +%s%N)"
  local rc=0
  "$bin" run --json --junit "$file.xml" "$@" >"$file.json" 2>"$file.err" || rc=$?
  # Exit 1 (failures) is a result; 2 is a usage error or an unreachable broker.
  if [ "$rc" -ge 2 ]; then
    notes+=("$label: the harness exited $rc: $(tail -1 "$file.err" | sed 's/127\.0\.0\.1:[0-9]*/127.0.0.1:PORT/g')")
    return 0
  fi
  printf '%s\t%s\n' "$label" "$file.json" >>"$out/rows"
}

run "reference (in-process)"

mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if [ -x "$mosq" ]; then
  version=$({ "$mosq" -h 2>/dev/null || true; } | sed -n '1s/.*version \([0-9.]*\).*/\1/p')
  passwd="$work/mosquitto.passwd"
  mosquitto_passwd -c -b "$passwd" conformance conformance-secret
  chmod 644 "$passwd"
  # mosquitto LABEL URL-CREDENTIALS CONFIG-LINES...
  mosquitto_row() {
    local label=$1 creds=$2
    shift 2
    local port conf
    port=$(free_port)
    conf="$work/$(slug "$label").conf"
    printf 'listener %s 127.0.0.1\n' "$port" >"$conf"
    printf '%s\n' "$@" >>"$conf"
    "$mosq" -c "$conf" >"$work/$(slug "$label").log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    if wait_port "$port"; then
      run "$label" --broker "mqtt://${creds}127.0.0.1:$port" --broker-name mosquitto
    else
      notes+=("$label: did not start ($(tail -1 "$work/$(slug "$label").log"))")
    fi
    kill "$pid" 2>/dev/null || true
  }
  mosquitto_row "mosquitto $version, default" "" "allow_anonymous true"
  mosquitto_row "mosquitto $version, password_file, allow_anonymous false" \
    "conformance:conformance-secret@" "allow_anonymous false" "password_file $passwd"
  mosquitto_row "mosquitto $version, max_qos 0" "" "allow_anonymous true" "max_qos 0"
  mosquitto_row "mosquitto $version, max_inflight_messages 1, max_keepalive 10, retain_available false, allow_zero_length_clientid false" \
    "" "allow_anonymous true" "max_inflight_messages 1" "max_keepalive 10" \
    "retain_available false" "allow_zero_length_clientid false"
else
  notes+=("mosquitto: not installed (apt-get install mosquitto mosquitto-clients)")
fi

amqtt=${AMQTT:-$(command -v amqtt || true)}
if [ -n "$amqtt" ] && [ -x "$amqtt" ]; then
  port=$(free_port)
  printf 'listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:%s\nauth:\n  allow-anonymous: true\ntopic-check:\n  enabled: false\n' \
    "$port" >"$work/amqtt.yaml"
  "$amqtt" -c "$work/amqtt.yaml" >"$work/amqtt.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  if wait_port "$port"; then
    # One case at a time: amqtt's CONNECT handler walks every client's subscriptions while
    # other connections add to them ("dictionary changed size during iteration" in its log),
    # and drops connections at random under concurrent cases; one at a time, its verdicts are
    # the same from run to run (docs/compat/amqtt.md).
    run "amqtt 0.12.1 (3.1.1 only)" --broker "mqtt://127.0.0.1:$port" --protocol 3.1.1 --jobs 1
  else
    notes+=("amqtt: did not start")
  fi
  kill "$pid" 2>/dev/null || true
else
  notes+=("amqtt: not installed (pip install amqtt==0.12.1, or AMQTT=path/to/amqtt)")
fi

rumqttd=${RUMQTTD:-$(command -v rumqttd || true)}
if [ -n "$rumqttd" ] && [ -x "$rumqttd" ]; then
  v4=$(free_port)
  v5=$(free_port)
  cat >"$work/rumqttd.toml" <<EOF
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "127.0.0.1:$v4"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
    dynamic_filters = true
[v5.1]
name = "v5-1"
listen = "127.0.0.1:$v5"
next_connection_delay_ms = 1
    [v5.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
EOF
  "$rumqttd" --config "$work/rumqttd.toml" >"$work/rumqttd.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  if wait_port "$v4" && wait_port "$v5"; then
    run "rumqttd 0.20 (3.1.1 and 5 listeners)" --broker "mqtt://127.0.0.1:$v4" --protocol 3.1.1
    run "rumqttd 0.20 (3.1.1 and 5 listeners)" --broker "mqtt://127.0.0.1:$v5" --protocol 5
  else
    notes+=("rumqttd: did not start ($(tail -1 "$work/rumqttd.log"))")
  fi
  kill "$pid" 2>/dev/null || true
else
  notes+=("rumqttd: not installed (cargo install rumqttd --version ^0.20, or RUMQTTD=path)")
fi

ejabberdctl=$(command -v ejabberdctl || echo /usr/sbin/ejabberdctl)
if [ -x "$ejabberdctl" ] && id ejabberd >/dev/null 2>&1; then
  # A node of its own (config, spool and logs under $work, owned by the ejabberd user that
  # ejabberdctl switches to), with one listener: mod_mqtt on a free port of 127.0.0.1.
  # mod_mqtt authenticates every connection against ejabberd's users (internal auth; a
  # connection without a password is refused), so the run uses a registered user.
  # max_user_sessions is raised: every connection of the run is a session of that one user.
  version=$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo '?')
  port=$(free_port)
  ej="$work/ejabberd"
  mkdir -p "$ej/spool" "$ej/logs"
  cat >"$ej/ejabberd.yml" <<EOF
loglevel: warning
log_rotate_count: 0
hosts:
  - localhost
auth_method: [internal]
listen:
  -
    port: $port
    ip: "127.0.0.1"
    module: mod_mqtt
shaper_rules:
  max_user_sessions: 100000
modules:
  mod_mqtt:
    access_publish:
      "#":
        - allow
    access_subscribe:
      "#":
        - allow
EOF
  chown -R ejabberd "$ej"
  ejctl() {
    "$ejabberdctl" --config-dir "$ej" --spool "$ej/spool" --logs "$ej/logs" \
      --node "ejabberd-compat-$$@localhost" "$@"
  }
  ejctl foreground >"$ej/foreground.log" 2>&1 &
  ejpid=$!
  pids+=("$ejpid")
  if wait_port "$port" && ejctl register conformance localhost conformance-secret >/dev/null 2>&1; then
    run "ejabberd $version mod_mqtt (internal auth)" \
      --broker "mqtt://conformance:conformance-secret@127.0.0.1:$port"
  else
    notes+=("ejabberd: did not start ($(tail -1 "$ej/logs/ejabberd.log" 2>/dev/null))")
  fi
  ejctl stop >/dev/null 2>&1 || true
  wait_exit "$ejpid"
else
  notes+=("ejabberd: not installed (apt-get install ejabberd)")
fi

rabbit=/usr/lib/rabbitmq/bin/rabbitmq-server
if [ -x "$rabbit" ] && id rabbitmq >/dev/null 2>&1; then
  # A node of its own (config, database and logs under $work, run as the rabbitmq user) with
  # the MQTT plugin on a free port of 127.0.0.1, no AMQP listener, anonymous MQTT connections
  # (as the default guest user, which may connect from the loopback interface).
  version=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?')
  port=$(free_port)
  rb="$work/rabbitmq"
  mkdir -p "$rb/mnesia" "$rb/log"
  printf 'listeners.tcp = none\nmqtt.listeners.tcp.default = 127.0.0.1:%s\nmqtt.allow_anonymous = true\nlog.console = false\nlog.file.level = warning\n' \
    "$port" >"$rb/rabbitmq.conf"
  echo '[rabbitmq_mqtt].' >"$rb/enabled_plugins"
  chown -R rabbitmq "$rb"
  rabbit_env=(env HOME="$rb" RABBITMQ_NODENAME="rabbit-compat-$$@localhost"
    RABBITMQ_CONFIG_FILE="$rb/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$rb/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$rb/mnesia" RABBITMQ_LOG_BASE="$rb/log"
    RABBITMQ_DIST_PORT="$(free_port)"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
  runuser -u rabbitmq -- "${rabbit_env[@]}" "$rabbit" >"$rb/out.log" 2>&1 &
  rbpid=$!
  pids+=("$rbpid")
  # It takes about 10 s to start on 2 cores: three waits of 10 s.
  if wait_port "$port" || wait_port "$port" || wait_port "$port"; then
    # MQTT 3.1.1 (and 3.1) only: the probe finds the MQTT 5 CONNECT closed without a CONNACK.
    run "rabbitmq $version rabbitmq_mqtt (3.1.1 only)" --broker "mqtt://127.0.0.1:$port"
  else
    notes+=("rabbitmq: did not start ($(tail -1 "$rb/out.log"))")
  fi
  runuser -u rabbitmq -- "${rabbit_env[@]}" /usr/lib/rabbitmq/bin/rabbitmqctl \
    -n "rabbit-compat-$$@localhost" stop >/dev/null 2>&1 || true
  wait_exit "$rbpid"
else
  notes+=("rabbitmq: not installed (apt-get install rabbitmq-server)")
fi

mqttools=${MQTTOOLS:-$(command -v mqttools || true)}
if [ -n "$mqttools" ] && [ -x "$mqttools" ]; then
  port=$(free_port)
  "$mqttools" broker --host 127.0.0.1 --port "$port" >"$work/mqttools.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  if wait_port "$port"; then
    # MQTT 5 only: the probe finds its 3.1.1 CONNECT unanswered and skips the 3.1.1 cases.
    run "mqttools 0.50.0 broker (5 only)" --broker "mqtt://127.0.0.1:$port"
  else
    notes+=("mqttools: did not start ($(tail -1 "$work/mqttools.log"))")
  fi
  kill "$pid" 2>/dev/null || true
else
  notes+=("mqttools: not installed (pip install mqttools==0.50.0, or MQTTOOLS=path/to/mqttools)")
fi

if [ -z "$only" ] || [[ "reference (container)" == *"$only"* ]]; then
  image=mqtt-conformance/reference-broker:compat
  if "$bin" build-image --binary target/debug/reference-broker --tag "$image" \
    -- --listen 0.0.0.0:1883 >"$work/build.log" 2>&1; then
    run "reference (local FROM-scratch container via testcontainers)" --image "$image" \
      --port 1883 --broker-name reference
  else
    notes+=("reference (container): $(tail -1 "$work/build.log")")
  fi
fi

# The table: `mqtt-conformance compare --markdown` over every row's JSON reports (the runs of
# one label, e.g. rumqttd's two listeners, are merged into one column). The README gets the
# totals (pass / fail / deviation / skipped per suite); docs/compat/matrix.md the whole
# comparison, with every case run whose verdicts differ between brokers; reports/compat/
# matrix.html the HTML matrix.
args=()
while IFS=$'\t' read -r label path; do
  args+=("$label=$path")
done <"$out/rows"
stamp="Generated by \`scripts/compat.sh\` on $(date -u +%F) with \`mqtt-conformance compare --markdown\`."
"$bin" compare --markdown --html "$out/matrix.html" "${args[@]}" >"$out/compare.md"
{
  echo "$stamp"
  echo
  # The totals: compare's first table, up to its first blank line.
  sed '/^$/q' "$out/compare.md" | sed '/^$/d'
  if [ "${#notes[@]}" -gt 0 ]; then
    echo
    for note in "${notes[@]}"; do echo "- not in the table: $note"; done
  fi
} >"$out/table.md"
cat "$out/table.md"

# A partial run (--only) writes reports/compat/ but leaves the README and docs/compat alone.
if [ -z "$only" ]; then
  {
    echo "# Brokers compared"
    echo
    echo "$stamp"
    echo "Case runs per suite as pass / fail / documented deviation / skipped; each failure is"
    echo "triaged in the broker's page of this directory."
    echo
    cat "$out/compare.md"
  } >docs/compat/matrix.md
  python3 - README.md "$out/table.md" <<'EOF'
import sys
readme, table = sys.argv[1], sys.argv[2]
body = open(readme).read()
begin, end = "<!-- compat:begin -->\n", "<!-- compat:end -->\n"
if begin in body and end in body:
    head, tail = body.split(begin, 1)
    _, tail = tail.split(end, 1)
    text = open(table).read()
    text += "\nEvery case run whose verdicts differ: [docs/compat/matrix.md](docs/compat/matrix.md).\n"
    open(readme, "w").write(head + begin + text + end + tail)
EOF
fi
