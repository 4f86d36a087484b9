#!/bin/sh
# One node of the bundled replicated Redis. `redis-node.sh redis ARGS...` starts its Redis
# (ARGS go to redis-server), `redis-node.sh sentinel` its Sentinel, and `redis-node.sh handover`
# (before the node stops) has the Sentinels promote another node if this one is the primary,
# so that clients wait seconds rather than down-after-milliseconds (`linger`, before the
# Sentinel stops, keeps it up meanwhile). Redis and Sentinel follow the
# Sentinels name, so a node that restarts after a failover comes back as a replica of the new
# primary instead of a second primary. When no Sentinel answers (the whole set is starting),
# node 0 is the primary.
#
# Environment: NODES (each node's host name, node 0 first), SELF (this node's host name),
# REDIS_PORT, SENTINEL_PORT, MASTER_NAME, QUORUM, DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS,
# REDIS_PASSWORD (of the nodes and the Sentinels), CONF_DIR (writable: the Sentinel's config),
# and optionally BIND (the addresses to listen on; Redis' default when unset).
set -eu

# A command to the Redis (or, with -p "$SENTINEL_PORT", the Sentinel) on host $1.
cli() {
  host=$1
  shift
  REDISCLI_AUTH="$REDIS_PASSWORD" timeout 2 redis-cli --no-auth-warning -h "$host" "$@" 2>/dev/null
}

# The host the Sentinels name primary; else a node that runs as a primary (the Sentinels
# restarted); else node 0 (the whole set is starting).
primary() {
  for host in $NODES; do
    answer=$(cli "$host" -p "$SENTINEL_PORT" sentinel get-master-addr-by-name "$MASTER_NAME" |
      head -n 1) || answer=""
    case "$answer" in
      "" | *" "* | NOAUTH* | WRONGPASS* | ERR*) ;;
      *) echo "$answer"; return ;;
    esac
  done
  for host in $NODES; do
    if [ "$host" != "$SELF" ] &&
      cli "$host" -p "$REDIS_PORT" role 2>/dev/null | head -n 1 | grep -qx master; then
      echo "$host"
      return
    fi
  done
  set -- $NODES
  echo "$1"
}

# Waits (up to a minute) until the primary answers: a Sentinel refuses to start on a host
# name that does not resolve yet (a new pod's name takes a moment to appear in DNS).
await() {
  for _ in $(seq 60); do
    if cli "$1" -p "$REDIS_PORT" ping | grep -q PONG; then
      return
    fi
    sleep 1
  done
  echo "primary $1 does not answer" >&2
  exit 1
}

# A command to this node's Redis.
node_cli() {
  cli "$SELF" -p "$REDIS_PORT" "$@"
}

usage="usage: redis-node.sh redis ARGS... | sentinel | handover | linger"
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
    caught_up=""
    for _ in $(seq 30); do
      info=$(node_cli info replication | tr -d '\r')
      offset=$(echo "$info" | sed -n 's/^master_repl_offset://p')
      behind=$(echo "$info" | grep '^slave[0-9]*:' | grep -v "offset=$offset," || true)
      if [ -z "$behind" ] && echo "$info" | grep -q '^slave0:'; then
        caught_up=yes
        break
      fi
      sleep 0.1
    done
    if [ -z "$caught_up" ]; then
      # No replica has everything: stop as a primary that fails, and let the Sentinels choose.
      node_cli client unpause >/dev/null || true
      echo "node $SELF: no replica caught up; no handover" >&2
      exit 1
    fi
    # This pod's own Sentinel is stopping with it: ask the others.
    for host in $NODES; do
      [ "$host" = "$SELF" ] && continue
      if cli "$host" -p "$SENTINEL_PORT" sentinel failover "$MASTER_NAME" | grep -q OK; then
        break
      fi
    done
    new=""
    for _ in $(seq 100); do
      new=$(primary)
      [ "$new" != "$SELF" ] && break
      sleep 0.2
    done
    if [ "$new" = "$SELF" ]; then
      node_cli client unpause >/dev/null || true
      echo "node $SELF: no other node took over" >&2
      exit 1
    fi
    # A replica of the new primary before the writes held meanwhile run: they fail
    # (READONLY) instead of landing here, to be thrown away.
    node_cli replicaof "$new" "$REDIS_PORT" >/dev/null || true
    node_cli client unpause >/dev/null || true
    echo "node $SELF: handed over to $new" >&2
    ;;
  linger)
    # The Sentinel of a primary that hands over stays until another node is primary.
    for _ in $(seq 25); do
      [ "$(primary)" != "$SELF" ] && exit 0
      sleep 1
    done
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
