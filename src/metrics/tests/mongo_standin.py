"""A MongoDB stand-in for nordiq-metrics' MongoDB source test: mockupdb (PyPI) speaks the
real wire protocol (OP_MSG, BSON); this script answers hello, find, getMore and
killCursors over a collection of metric documents that grows by one document per host
per second, with MongoDB's semantics for the filter ($gte/$lt on the timestamp), the sort
(timestamp, _id) and batched cursors (Int64 ids).

usage: mongo_standin.py PORT START_MS
"""
import datetime
import itertools
import sys
import time

from bson import Int64, ObjectId
from mockupdb import MockupDB

HOSTS = ["mongo01", "mongo02", "mongo03"]
UTC = datetime.timezone.utc


def ms(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return int(value)


def documents(start_ms, until_ms):
    t = start_ms
    while t < until_ms:
        for i, host in enumerate(HOSTS):
            oid = ObjectId((t // 1000).to_bytes(4, "big") + i.to_bytes(8, "big"))
            yield {
                "_id": oid,
                "timestamp": datetime.datetime.fromtimestamp(t / 1000, UTC),
                "server_name": host,
                "cpu_user_pct": 10.0 + i,
                "mem_used_pct": 50.0,
            }
        t += 1000


def main():
    port, start_ms = int(sys.argv[1]), int(sys.argv[2])
    server = MockupDB(port=port, request_timeout=3600)
    server.run()
    print("ready", flush=True)
    cursors = {}
    ids = itertools.count(1000)
    while True:
        request = server.receives(timeout=3600)
        cmd = request.doc
        name = next(iter(cmd)).lower()
        if name in ("hello", "ismaster"):
            request.reply({
                "isWritablePrimary": True, "ismaster": True, "helloOk": True,
                "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000,
                "maxWriteBatchSize": 100000, "localTime": datetime.datetime.now(UTC),
                "logicalSessionTimeoutMinutes": 30, "connectionId": 1,
                "minWireVersion": 0, "maxWireVersion": 17, "readOnly": False, "ok": 1.0,
            })
        elif name == "find":
            now = int(time.time() * 1000)
            flt = cmd.get("filter", {}).get("timestamp", {})
            lo, hi = ms(flt.get("$gte", 0)), ms(flt.get("$lt", 2**62))
            assert list(cmd.get("sort", {}).items()) == [("timestamp", 1), ("_id", 1)], cmd.get("sort")
            docs = [d for d in documents(start_ms, now) if lo <= ms(d["timestamp"]) < hi]
            docs.sort(key=lambda d: (ms(d["timestamp"]), d["_id"]))
            size = int(cmd.get("batchSize", 101))
            first, rest = docs[:size], docs[size:]
            cid = next(ids) if rest else 0
            if rest:
                cursors[cid] = (rest, size)
            ns = "%s.%s" % (cmd["$db"], cmd["find"])
            request.reply({"cursor": {"id": Int64(cid), "ns": ns, "firstBatch": first}, "ok": 1.0})
        elif name == "getmore":
            cid = int(cmd["getMore"])
            assert isinstance(cmd["getMore"], Int64), "cursor ids are Int64"
            if cid not in cursors:
                request.reply({"ok": 0.0, "errmsg": "cursor id %d not found" % cid, "code": 43})
                continue
            rest, size = cursors.pop(cid)
            size = int(cmd.get("batchSize", size))
            batch, rest = rest[:size], rest[size:]
            next_id = cid if rest else 0
            if rest:
                cursors[cid] = (rest, size)
            ns = "%s.%s" % (cmd["$db"], cmd["collection"])
            request.reply({"cursor": {"id": Int64(next_id), "ns": ns, "nextBatch": batch}, "ok": 1.0})
        elif name == "killcursors":
            for c in cmd.get("cursors", []):
                cursors.pop(int(c), None)
            request.reply({"cursorsKilled": cmd.get("cursors", []), "ok": 1.0})
        else:
            request.reply({"ok": 0.0, "errmsg": "no such command: '%s'" % name, "code": 59})


if __name__ == "__main__":
    main()
