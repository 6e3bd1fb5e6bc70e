"""A MongoDB stand-in for nordiq-metrics' MongoDB source tests.

mockupdb (PyPI) speaks the real wire protocol (OP_QUERY for the driver's first handshake,
OP_MSG after, BSON); this script gives it MongoDB's behaviour for what the official Rust
driver sends: the handshake (`isMaster`/`hello`, as a standalone server or as the primary
of a one-member replica set), SCRAM-SHA-256 (`saslStart`/`saslContinue`, RFC 5802/7677,
with the mechanism negotiation of `saslSupportedMechs`), commands refused with code 13
before authentication, TLS with a certificate the test made, and `find`/`getMore`/
`killCursors` over a collection of metric documents that grows by one document per host
per second ($gte/$lt on the timestamp, sort by timestamp and _id, limit, batched cursors
with Int64 ids).

usage: mongo_standin.py PORT START_MS [--tls CERT KEY] [--user NAME PASSWORD]
                        [--replica-set NAME]
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import itertools
import os
import ssl
import sys
import time

from bson import Int64, ObjectId
from mockupdb import MockupDB

HOSTS = ["mongo01", "mongo02", "mongo03"]
UTC = datetime.timezone.utc
ITERATIONS = 4096


def say(text):
    """A line in the test's log of this process (its stderr)."""
    print(text, file=sys.stderr, flush=True)


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


class TlsMockupDB(MockupDB):
    """MockupDB whose connections speak TLS with the given context (mockupdb's own TLS
    option brings a certificate of its own); a client that fails the handshake is
    dropped, as mongod drops it."""

    def __init__(self, context, **kwargs):
        super().__init__(**kwargs)
        self._context = context

    def _server_loop(self, client, client_addr):
        try:
            client = self._context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as error:
            say("TLS handshake refused: %s" % error)
            client.close()
            return
        super()._server_loop(client, client_addr)


class Scram:
    """The server's side of SCRAM-SHA-256 for one user."""

    def __init__(self, user, password):
        self.user = user
        self.salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, ITERATIONS)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        self.stored_key = hashlib.sha256(client_key).digest()
        self.server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.conversations = {}
        self.ids = itertools.count(1)

    def start(self, payload):
        """client-first → (conversation id, server-first), or None for another user."""
        _gs2, _authzid, bare = payload.decode().split(",", 2)
        attrs = dict(kv.split("=", 1) for kv in bare.split(","))
        if attrs.get("n") != self.user:
            return None
        nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode()
        first = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(self.salt).decode(), ITERATIONS)
        cid = next(self.ids)
        self.conversations[cid] = (bare, first, nonce)
        return cid, first.encode()

    def finish(self, cid, payload):
        """client-final → server-final, or None when the proof is wrong."""
        bare, first, nonce = self.conversations.pop(cid)
        final = payload.decode()
        without_proof, proof = final.rsplit(",p=", 1)
        attrs = dict(kv.split("=", 1) for kv in without_proof.split(","))
        if attrs.get("r") != nonce:
            return None
        message = ",".join([bare, first, without_proof]).encode()
        signature = hmac.digest(self.stored_key, message, "sha256")
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        if hashlib.sha256(client_key).digest() != self.stored_key:
            return None
        server_signature = hmac.digest(self.server_key, message, "sha256")
        return ("v=" + base64.b64encode(server_signature).decode()).encode()


def refuse(request, code, message, name):
    request.reply({"ok": 0.0, "errmsg": message, "code": code, "codeName": name})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("start_ms", type=int)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--user", nargs=2, metavar=("NAME", "PASSWORD"))
    parser.add_argument("--replica-set")
    args = parser.parse_args()

    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server = TlsMockupDB(context, port=args.port, request_timeout=3600)
    else:
        server = MockupDB(port=args.port, request_timeout=3600)
    server.run()
    say("ready")
    me = "127.0.0.1:%d" % args.port
    scram = Scram(*args.user) if args.user else None
    authenticated = set()  # client ports that completed SCRAM
    cursors = {}
    ids = itertools.count(1000)

    def handle(request, port):
        """Answers one command, as mongod would."""
        cmd = request.doc
        name = next(iter(cmd)).lower()
        needs_auth = scram is not None and port not in authenticated
        if name in ("hello", "ismaster"):
            reply = {
                "isWritablePrimary": True, "ismaster": True, "helloOk": True,
                "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000,
                "maxWriteBatchSize": 100000, "localTime": datetime.datetime.now(UTC),
                "logicalSessionTimeoutMinutes": 30, "connectionId": port,
                "minWireVersion": 0, "maxWireVersion": 17, "readOnly": False, "ok": 1.0,
            }
            if args.replica_set:
                reply.update({
                    "setName": args.replica_set, "setVersion": 1, "hosts": [me],
                    "primary": me, "me": me, "secondary": False,
                    "electionId": ObjectId(b"\x7f\xff\xff\xff" + bytes(8)),
                })
            if scram and "saslSupportedMechs" in cmd:
                reply["saslSupportedMechs"] = ["SCRAM-SHA-256"]
            request.reply(reply)
        elif name == "saslstart":
            if scram is None or cmd.get("mechanism") != "SCRAM-SHA-256":
                refuse(request, 2, "mechanism %s is not supported" % cmd.get("mechanism"),
                       "BadValue")
                return
            started = scram.start(bytes(cmd["payload"]))
            if started is None:
                say("authentication refused: unknown user")
                refuse(request, 18, "Authentication failed.", "AuthenticationFailed")
                return
            cid, payload = started
            request.reply({"conversationId": cid, "done": False, "payload": payload,
                           "ok": 1.0})
        elif name == "saslcontinue":
            cid = int(cmd["conversationId"])
            if scram is None or cid not in scram.conversations:
                refuse(request, 17, "No SASL session state found", "ProtocolError")
                return
            final = scram.finish(cid, bytes(cmd["payload"]))
            if final is None:
                say("authentication refused: wrong proof")
                refuse(request, 18, "Authentication failed.", "AuthenticationFailed")
                return
            authenticated.add(port)
            say("authenticated %s on port %d" % (scram.user, port))
            request.reply({"conversationId": cid, "done": True, "payload": final,
                           "ok": 1.0})
        elif name in ("endsessions", "ping"):
            request.reply({"ok": 1.0})
        elif needs_auth:
            refuse(request, 13, "command %s requires authentication" % name, "Unauthorized")
        elif name == "find":
            now = int(time.time() * 1000)
            flt = cmd.get("filter", {}).get("timestamp", {})
            lo, hi = ms(flt.get("$gte", 0)), ms(flt.get("$lt", 2**62))
            assert list(cmd.get("sort", {}).items()) == [("timestamp", 1), ("_id", 1)], cmd.get("sort")
            docs = [d for d in documents(args.start_ms, now) if lo <= ms(d["timestamp"]) < hi]
            docs.sort(key=lambda d: (ms(d["timestamp"]), d["_id"]))
            if cmd.get("limit"):
                docs = docs[:int(cmd["limit"])]
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
                refuse(request, 43, "cursor id %d not found" % cid, "CursorNotFound")
                return
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
            refuse(request, 59, "no such command: '%s'" % name, "CommandNotFound")

    while True:
        try:
            request = server.receives(timeout=3600)
            port = request.client_port
        except OSError:
            continue  # a request whose client hung up before it was served
        try:
            handle(request, port)
        except OSError as error:
            # A client that hung up before its reply (a reader stopped mid-request)
            # must not take the server down, as it would not take mongod down.
            say("reply not delivered: %s" % error)


if __name__ == "__main__":
    main()
