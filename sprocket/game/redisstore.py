"""The cluster's shared state in Redis: nodes, rooms, seat reservations (the only module importing redis).

Every change of shared state is one Lua script, so Redis runs it atomically: two nodes reserving the last
seat of a room at once cannot both get it, and a room is never over capacity (seated players plus live
reservations never exceed its seats).  The keys, under a prefix (default ``sprocket``):

* ``P:node:ID`` (hash: host, port, capacity, load, beats; expires ``ttl`` after the node's last
  heartbeat) and the set ``P:nodes`` of node ids (an id whose hash expired is dropped when next seen);
* ``P:room:CODE`` (hash: node, type, name, private, max, players, state, created; expires with its node),
  the set ``P:type:TYPE`` of room codes of a type and ``P:noderooms:ID`` of a node's rooms; a code is
  taken once in the whole cluster (the room hash is created only if absent);
* ``P:resv:CODE`` (sorted set: reservation id -> expiry in Redis' own clock, ms): seats promised to
  clients on their way; an expired one no longer counts and is removed when next seen.

The scripts read keys they are not given as KEYS (a standalone Redis allows it; Redis Cluster, the
sharded server, does not: use one Redis, with a replica for safety).  This module does no signing and
knows nothing of rooms' games: :mod:`sprocket.game.cluster` drives it from its worker thread.

Raises :class:`~sprocket.errors.UsageError` on import if the ``redis`` package is missing (install
``sprocket[redis]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sprocket.errors import UsageError

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised by test_cluster_without_redis in a subprocess
    raise UsageError(
        "the cluster needs the redis client: pip install redis "
        "(in sprocket's clone: pip install '.[redis]')"
    ) from exc

__all__ = ["RedisStore", "Reservation", "StoreDown"]

# Lua helpers shared by the scripts (prepended to each).
_LIB = """
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function node_alive(id)
  return id and redis.call('EXISTS', P .. ':node:' .. id) == 1
end
local function taken(code, now)
  local rk = P .. ':resv:' .. code
  redis.call('ZREMRANGEBYSCORE', rk, '-inf', now)
  return tonumber(redis.call('HGET', P .. ':room:' .. code, 'players') or '0') + redis.call('ZCARD', rk)
end
local function reserve(code, rid, ttl, now)
  local rk = P .. ':resv:' .. code
  redis.call('ZADD', rk, now + ttl, rid)
  redis.call('PEXPIRE', rk, ttl + 60000)
  local node = redis.call('HGET', P .. ':room:' .. code, 'node')
  local addr = redis.call('HMGET', P .. ':node:' .. node, 'host', 'port')
  return {'ok', code, node, addr[1], addr[2]}
end
local function create(type, name, private, max, code, rid, ttl, now, room_ttl)
  local rkey = P .. ':room:' .. code
  if redis.call('EXISTS', rkey) == 1 then return {'taken'} end
  local best, fewest = nil, nil
  for _, id in ipairs(redis.call('SMEMBERS', P .. ':nodes')) do
    local cap = redis.call('HGET', P .. ':node:' .. id, 'capacity')
    if not cap then
      redis.call('SREM', P .. ':nodes', id)
    else
      local n = redis.call('SCARD', P .. ':noderooms:' .. id)
      if n < tonumber(cap) and (fewest == nil or n < fewest or (n == fewest and id < best)) then
        best, fewest = id, n
      end
    end
  end
  if not best then return {'max_rooms'} end
  redis.call('HSET', rkey, 'node', best, 'type', type, 'name', name, 'private', private, 'max', max,
             'players', 0, 'state', '', 'created', now)
  redis.call('PEXPIRE', rkey, room_ttl)
  redis.call('SADD', P .. ':type:' .. type, code)
  redis.call('SADD', P .. ':noderooms:' .. best, code)
  return reserve(code, rid, ttl, now)
end
"""

# ARGV: P, type, max, ttl, rid, new code, room_ttl, code to avoid
_QUICK = """
local now = now_ms()
local tkey = P .. ':type:' .. ARGV[2]
local best, most = nil, -1
for _, code in ipairs(redis.call('SMEMBERS', tkey)) do
  local r = redis.call('HMGET', P .. ':room:' .. code, 'node', 'private', 'max')
  if not r[1] then
    redis.call('SREM', tkey, code)
  elseif r[2] == '0' and code ~= ARGV[8] and node_alive(r[1]) then
    local n = taken(code, now)
    if n < tonumber(r[3]) and (n > most or (n == most and code < best)) then best, most = code, n end
  end
end
if best then return reserve(best, ARGV[5], tonumber(ARGV[4]), now) end
return create(ARGV[2], '', 0, ARGV[3], ARGV[6], ARGV[5], tonumber(ARGV[4]), now, tonumber(ARGV[7]))
"""

# ARGV: P, type, max, ttl, rid, new code, room_ttl, name, private
_CREATE = """
local now = now_ms()
return create(ARGV[2], ARGV[8], ARGV[9], ARGV[3], ARGV[6], ARGV[5], tonumber(ARGV[4]), now, tonumber(ARGV[7]))
"""

# ARGV: P, code, ttl, rid
_JOIN = """
local now = now_ms()
local r = redis.call('HMGET', P .. ':room:' .. ARGV[2], 'node', 'max')
if not r[1] or not node_alive(r[1]) then return {'no_room'} end
if taken(ARGV[2], now) >= tonumber(r[2]) then return {'full', r[2]} end
return reserve(ARGV[2], ARGV[4], tonumber(ARGV[3]), now)
"""

# ARGV: P, code, rid, node id.  Turns a live reservation into a seated player.
_CLAIM = """
local now = now_ms()
local rk = P .. ':resv:' .. ARGV[2]
local expiry = redis.call('ZSCORE', rk, ARGV[3])
if not expiry then return {'used'} end
redis.call('ZREM', rk, ARGV[3])
if tonumber(expiry) <= now then return {'expired'} end
local rkey = P .. ':room:' .. ARGV[2]
local r = redis.call('HMGET', rkey, 'node', 'type', 'name', 'private', 'max')
if not r[1] then return {'no_room'} end
if r[1] ~= ARGV[4] then return {'other_node'} end
redis.call('HINCRBY', rkey, 'players', 1)
return {'ok', r[2], r[3], r[4], r[5]}
"""

# ARGV: P, code, node id.  A seated player left.
_RELEASE = """
local rkey = P .. ':room:' .. ARGV[2]
if redis.call('HGET', rkey, 'node') ~= ARGV[3] then return 0 end
if tonumber(redis.call('HGET', rkey, 'players') or '0') > 0 then
  redis.call('HINCRBY', rkey, 'players', -1)
end
return 1
"""

# ARGV: P, code, node id.  The node closed the room.
_DROP = """
local rkey = P .. ':room:' .. ARGV[2]
local r = redis.call('HMGET', rkey, 'node', 'type')
if r[1] ~= ARGV[3] then return 0 end
redis.call('DEL', rkey, P .. ':resv:' .. ARGV[2])
redis.call('SREM', P .. ':type:' .. r[2], ARGV[2])
redis.call('SREM', P .. ':noderooms:' .. ARGV[3], ARGV[2])
return 1
"""

# ARGV: P, node id, host, port, capacity, load, ttl, empty_ms, then code, state pairs of the node's rooms.
# Returns {1 if the node was registered already, else 0 (new, expired or Redis lost its data); the codes of
# its rooms that Redis does not hold}.
_HEARTBEAT = """
local now = now_ms()
local id, ttl, empty = ARGV[2], tonumber(ARGV[7]), tonumber(ARGV[8])
local nkey = P .. ':node:' .. id
local existed = redis.call('EXISTS', nkey)
redis.call('HSET', nkey, 'host', ARGV[3], 'port', ARGV[4], 'capacity', ARGV[5], 'load', ARGV[6])
redis.call('HINCRBY', nkey, 'beats', 1)
redis.call('PEXPIRE', nkey, ttl)
redis.call('SADD', P .. ':nodes', id)
local mine = {}
for i = 9, #ARGV, 2 do mine[ARGV[i]] = ARGV[i + 1] end
local nr = P .. ':noderooms:' .. id
for _, code in ipairs(redis.call('SMEMBERS', nr)) do
  local rkey = P .. ':room:' .. code
  local r = redis.call('HMGET', rkey, 'node', 'type', 'created')
  if r[1] ~= id then
    redis.call('SREM', nr, code)
  elseif mine[code] == nil and now - tonumber(r[3]) > empty and taken(code, now) == 0 then
    -- a room promised to this node that nobody came to: gone, like an empty room
    redis.call('DEL', rkey, P .. ':resv:' .. code)
    redis.call('SREM', P .. ':type:' .. r[2], code)
    redis.call('SREM', nr, code)
  else
    redis.call('PEXPIRE', rkey, ttl)
    if mine[code] ~= nil then redis.call('HSET', rkey, 'state', mine[code]) end
  end
end
redis.call('PEXPIRE', nr, ttl * 4)
local missing = {}
for code, _ in pairs(mine) do
  if redis.call('EXISTS', P .. ':room:' .. code) == 0 then table.insert(missing, code) end
end
return {existed, missing}
"""

# ARGV: P, node id, ttl, then code, type, name, private, max, players, state per room.  Writes the node's
# rooms as it holds them (after Redis restarted or was unreachable); returns the codes another node holds.
_REGISTER = """
local now = now_ms()
local id, ttl = ARGV[2], tonumber(ARGV[3])
local clashes = {}
for i = 4, #ARGV, 7 do
  local code = ARGV[i]
  local rkey = P .. ':room:' .. code
  local holder = redis.call('HGET', rkey, 'node')
  if holder and holder ~= id then
    table.insert(clashes, code)
  else
    redis.call('HSET', rkey, 'node', id, 'type', ARGV[i + 1], 'name', ARGV[i + 2], 'private', ARGV[i + 3],
               'max', ARGV[i + 4], 'players', ARGV[i + 5], 'state', ARGV[i + 6], 'created', now)
    redis.call('PEXPIRE', rkey, ttl)
    redis.call('SADD', P .. ':type:' .. ARGV[i + 1], code)
    redis.call('SADD', P .. ':noderooms:' .. id, code)
  end
end
return clashes
"""

# ARGV: P, then room types.  Every live room of those types: code, type, name, private, max, players, state.
_LIST = """
local out = {}
for i = 2, #ARGV do
  local tkey = P .. ':type:' .. ARGV[i]
  for _, code in ipairs(redis.call('SMEMBERS', tkey)) do
    local r = redis.call('HMGET', P .. ':room:' .. code, 'node', 'type', 'name', 'private', 'max', 'players',
                         'state')
    if not r[1] then
      redis.call('SREM', tkey, code)
    elseif node_alive(r[1]) then
      table.insert(out, {code, r[2], r[3], r[4], r[5], r[6], r[7], r[1]})
    end
  end
end
return out
"""

# ARGV: P, node id.  The node is shutting down: its rooms and itself go.
_LEAVE = """
local id = ARGV[2]
local nr = P .. ':noderooms:' .. id
for _, code in ipairs(redis.call('SMEMBERS', nr)) do
  local rkey = P .. ':room:' .. code
  local r = redis.call('HMGET', rkey, 'node', 'type')
  if r[1] == id then
    redis.call('DEL', rkey, P .. ':resv:' .. code)
    redis.call('SREM', P .. ':type:' .. r[2], code)
  end
end
redis.call('DEL', nr, P .. ':node:' .. id)
redis.call('SREM', P .. ':nodes', id)
return 1
"""


class StoreDown(Exception):
    """Internal: Redis could not be reached (or answered with an error); the request was not done."""


@dataclass(frozen=True)
class Reservation:
    """A seat promised in Redis: room ``code`` on node ``node`` (reachable at ``host``:``port``), held
    for the reservation id ``rid`` until it is claimed or expires."""

    code: str
    node: str
    host: str
    port: int
    rid: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """The cluster's state in one Redis: the scripts above, called from one thread (not thread-safe).

    Args:
        url: a Redis URL (``redis://host:6379/0``; ``rediss://`` for TLS).
        prefix: the key prefix (clusters sharing one Redis use different prefixes).
        timeout: seconds a Redis call may take before it counts as a failure (a call never hangs longer).

    Every method raises :class:`StoreDown` when Redis cannot be reached or fails; nothing else.
    """

    def __init__(self, url: str, *, prefix: str = "sprocket", timeout: float = 1.0) -> None:
        self.prefix = prefix
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
        )
        self._scripts = {
            name: self._redis.register_script(_LIB + body)
            for name, body in (
                ("quick", _QUICK),
                ("create", _CREATE),
                ("join", _JOIN),
                ("claim", _CLAIM),
                ("release", _RELEASE),
                ("drop", _DROP),
                ("heartbeat", _HEARTBEAT),
                ("register", _REGISTER),
                ("list", _LIST),
                ("leave", _LEAVE),
            )
        }

    def _run(self, name: str, *args: Any) -> Any:
        try:
            return self._scripts[name](args=[self.prefix, *args])
        except redis.RedisError as exc:
            raise StoreDown(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _reservation(reply: list[Any], rid: str) -> Reservation | str:
        if _text(reply[0]) != "ok":
            return _text(reply[0])
        return Reservation(_text(reply[1]), _text(reply[2]), _text(reply[3]), int(reply[4]), rid)

    def quick(self, type_name: str, seats: int, rid: str, new_code: str, *, ttl_ms: int, room_ttl_ms: int,
              avoid: str = "") -> Reservation | str:  # fmt: skip
        """Reserve a seat in the fullest public room of ``type_name`` with one free (cluster-wide), or
        in a new room ``new_code`` opened on the node with the fewest rooms.  Returns the Reservation,
        or ``"taken"`` (``new_code`` exists: try another) or ``"max_rooms"`` (every node is full)."""
        reply = self._run("quick", type_name, seats, ttl_ms, rid, new_code, room_ttl_ms, avoid)
        return self._reservation(reply, rid)

    def create(self, type_name: str, seats: int, rid: str, new_code: str, *, name: str, private: bool,
               ttl_ms: int, room_ttl_ms: int) -> Reservation | str:  # fmt: skip
        """Open room ``new_code`` on the node with the fewest rooms and reserve a seat in it; as
        :meth:`quick` for the results."""
        reply = self._run("create", type_name, seats, ttl_ms, rid, new_code, room_ttl_ms, name, int(private))
        return self._reservation(reply, rid)

    def join(self, code: str, rid: str, *, ttl_ms: int) -> Reservation | str:
        """Reserve a seat in room ``code``: the Reservation, ``"no_room"`` or ``"full"``."""
        return self._reservation(self._run("join", code, ttl_ms, rid), rid)

    def claim(self, code: str, rid: str, node: str) -> tuple[str, dict[str, Any]]:
        """Turn reservation ``rid`` into a seated player of room ``code`` held by ``node``: ``("ok",
        room fields)``, or ``("used" | "expired" | "no_room" | "other_node", {})``."""
        reply = self._run("claim", code, rid, node)
        if _text(reply[0]) != "ok":
            return _text(reply[0]), {}
        return "ok", {"type": _text(reply[1]), "name": _text(reply[2]), "private": _text(reply[3]) == "1",
                      "max": int(reply[4])}  # fmt: skip

    def release(self, code: str, node: str) -> None:
        """A seated player of room ``code`` left."""
        self._run("release", code, node)

    def drop(self, code: str, node: str) -> None:
        """Room ``code`` of ``node`` closed: its record and reservations go."""
        self._run("drop", code, node)

    def heartbeat(self, node: str, host: str, port: int, capacity: int, load: int, ttl_ms: int, empty_ms: int,
                  rooms: dict[str, str]) -> tuple[bool, list[str]]:  # fmt: skip
        """Refresh the node and its rooms (``rooms``: code -> state string) for ``ttl_ms``; rooms
        promised to it but never opened go after ``empty_ms``.  Returns whether the node was registered
        (False: new, expired, or Redis lost its data: :meth:`register` its rooms then) and the codes of
        its rooms Redis does not hold (register those)."""
        flat = [item for pair in rooms.items() for item in pair]
        known, missing = self._run("heartbeat", node, host, port, capacity, load, ttl_ms, empty_ms, *flat)
        return bool(known), [_text(code) for code in missing]

    def register(
        self, node: str, ttl_ms: int, rooms: list[tuple[str, str, str, bool, int, int, str]]
    ) -> list[str]:
        """Write the node's rooms as it holds them: (code, type, name, private, max, players, state)
        each.  Returns the codes another node holds (not written)."""
        flat: list[Any] = []
        for code, type_name, name, private, seats, players, state in rooms:
            flat += [code, type_name, name, int(private), seats, players, state]
        return [_text(code) for code in self._run("register", node, ttl_ms, *flat)]

    def rooms(self, types: list[str]) -> list[dict[str, Any]]:
        """Every live room of these types, cluster-wide (private ones too: filter them)."""
        out = []
        for row in self._run("list", *types):
            code, type_name, name, private, seats, players, state, node = (_text(v) for v in row)
            out.append({"code": code, "type": type_name, "name": name or None, "private": private == "1",
                        "max": int(seats), "players": int(players), "state": state,
                        "node": node})  # fmt: skip
        return out

    def nodes(self) -> list[tuple[str, str, int, int]]:
        """The live nodes: (id, host, port, rooms) each."""
        out = []
        pipe = self._redis.pipeline(transaction=False)
        try:
            ids = [_text(i) for i in self._redis.smembers(f"{self.prefix}:nodes")]
            for node in sorted(ids):
                pipe.hmget(f"{self.prefix}:node:{node}", "host", "port")
                pipe.scard(f"{self.prefix}:noderooms:{node}")
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise StoreDown(f"{type(exc).__name__}: {exc}") from exc
        for i, node in enumerate(sorted(ids)):
            host, port = replies[2 * i]
            if host is not None:
                out.append((node, _text(host), int(port), int(replies[2 * i + 1])))
        return out

    def leave(self, node: str) -> None:
        """The node shuts down: remove it and its rooms."""
        self._run("leave", node)

    def ping(self) -> None:
        """Raise StoreDown unless Redis answers."""
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise StoreDown(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()
