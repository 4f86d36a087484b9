#!/bin/sh
# One node of the bundled replicated Redis. `redis-node.sh redis ARGS...` starts its Redis
# (ARGS go to redis-server), `redis-node.sh sentinel` its Sentinel, and `redis-node.sh handover`
# (before the node stops) has the Sentinels promote another node if this one is the primary,
# so that clients wait seconds rather than down-after-milliseconds. Redis and Sentinel follow the
# Sentinels name, so a node that restarts after a failover comes back as a replica of the new
# primary instead of a second primary. When no Sentinel answers (the whole set is starting),
# node 0 is the primary.
#
# Environment: NODES (each node's host name, node 0 first), SELF (this node's host name),
# REDIS_PORT, SENTINEL_PORT, MASTER_NAME, QUORUM, DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS,
# REDIS_PASSWORD (of the nodes and the Sentinels), CONF_DIR (writable: the Sentinel's config),
# and optionally BIND (the addresses to listen on; Redis' default when unset).
set -eu

# The host the Sentinels name primary, or node 0's when none of them answers.
primary() {
  for host in $NODES; do
    answer=$(REDISCLI_AUTH="$REDIS_PASSWORD" timeout 2 redis-cli --no-auth-warning -h "$host" \
      -p "$SENTINEL_PORT" sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null |
      head -n 1) || answer=""
    case "$answer" in
      "" | *" "*) ;;
      *) echo "$answer"; return ;;
    esac
  done
  set -- $NODES
  echo "$1"
}

# Waits (up to a minute) until the primary answers: a Sentinel refuses to start on a host
# name that does not resolve yet (a new pod's name takes a moment to appear in DNS).
await() {
  for _ in $(seq 60); do
    if REDISCLI_AUTH="$REDIS_PASSWORD" timeout 2 redis-cli --no-auth-warning -h "$1" \
      -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
      return
    fi
    sleep 1
  done
  echo "primary $1 does not answer" >&2
  exit 1
}

# A command to this node's Redis.
node_cli() {
  REDISCLI_AUTH="$REDIS_PASSWORD" timeout 2 redis-cli --no-auth-warning -h "$SELF" \
    -p "$REDIS_PORT" "$@"
}

usage="usage: redis-node.sh redis ARGS... | sentinel | handover"
mode=${1:?$usage}
shift
leader=$(primary)
echo "node $SELF: primary is $leader" >&2
case "$mode" in
  redis)
    if [ "$leader" != "$SELF" ]; then
      set -- "$@" --replicaof "$leader" "$REDIS_PORT"
    fi
    if [ -n "${BIND:-}" ]; then
      set -- "$@" --bind "$BIND"
    fi
    exec redis-server --port "$REDIS_PORT" --requirepass "$REDIS_PASSWORD" \
      --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$SELF" "$@"
    ;;
  sentinel)
    await "$leader"
    conf="$CONF_DIR/sentinel.conf"
    {
      echo "port $SENTINEL_PORT"
      if [ -n "${BIND:-}" ]; then echo "bind $BIND"; fi
      echo "dir $CONF_DIR"
      echo "sentinel resolve-hostnames yes"
      echo "sentinel announce-hostnames yes"
      echo "sentinel announce-ip $SELF"
      echo "requirepass \"$REDIS_PASSWORD\""
      echo "sentinel sentinel-pass \"$REDIS_PASSWORD\""
      echo "sentinel monitor $MASTER_NAME $leader $REDIS_PORT $QUORUM"
      echo "sentinel auth-pass $MASTER_NAME \"$REDIS_PASSWORD\""
      echo "sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS"
      echo "sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS"
      echo "sentinel parallel-syncs $MASTER_NAME 1"
    } >"$conf"
    exec redis-server "$conf" --sentinel
    ;;
  handover)
    if [ "$leader" != "$SELF" ]; then
      exit 0
    fi
    # Writes wait while the replicas catch up, so whichever is promoted has every change.
    node_cli client pause 20000 write >/dev/null || true
    for _ in $(seq 30); do
      info=$(node_cli info replication | tr -d '\r')
      offset=$(echo "$info" | sed -n 's/^master_repl_offset://p')
      behind=$(echo "$info" | grep '^slave[0-9]*:' | grep -v "offset=$offset," || true)
      [ -z "$behind" ] && break
      sleep 0.1
    done
    REDISCLI_AUTH="$REDIS_PASSWORD" timeout 2 redis-cli --no-auth-warning -h "$SELF" \
      -p "$SENTINEL_PORT" sentinel failover "$MASTER_NAME" >&2 || true
    handed=""
    for _ in $(seq 20); do
      if [ "$(primary)" != "$SELF" ]; then
        handed=yes
        break
      fi
      sleep 1
    done
    # The writes held meanwhile now fail on a replica (READONLY), and are retried elsewhere.
    node_cli client unpause >/dev/null || true
    if [ -z "$handed" ]; then
      echo "node $SELF: no other node took over" >&2
      exit 1
    fi
    echo "node $SELF: handed over to $(primary)" >&2
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
