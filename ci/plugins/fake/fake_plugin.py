#!/usr/bin/env python3
"""A fake Agent 2 loadable plugin speaking the wire protocol directly (no SDK).

Started like a real plugin: fake_plugin.py <socket> true|false. It dials the agent's
Unix socket and answers like a plugin built with the 6.0 SDK (protocol.md section 4):
sequential handling, a trace log request per request, exit on Terminate.

ZBXC_FAKE_MODE selects a deliberate defect so zbx-conform's certification can be shown
to fail on the right requirement:
  good             no defect
  wrong-id         Export responses carry the request id + 1000
  any-version      Register accepts any protocol version
  crash-export     the process exits with status 2 on the first Export
  silent           never answers anything (and ignores Terminate)
  bad-frame        on Terminate, writes a frame with type code 2 before exiting
  bad-interfaces   Register reports interfaces = 9 (an unknown bit: agent2 ignores it)
  text-interfaces  Register reports interfaces as the string "3" (agent2 cannot decode it)
  bad-descriptions Register reports descriptions in lower case without a final dot
  odd-metrics      Register reports an odd-length metrics array
  no-exit          ignores Terminate
  bad-log          log requests carry id 7 and severity 9
  lax-options      Validate accepts any option, and a Configure with an unknown option makes
                   it exit (it never checked them)
  strict-options   Validate rejects every option, even the System.Path the agent always sends
  crash-configure  the process exits with status 2 on Configure
  crash-parameters the process exits with status 2 on an Export with more than 3 parameters
  not-json         after the Register response, sends a type-1 frame whose payload is not JSON
  trailing-bytes   on Terminate, writes 3 bytes of a frame header before exiting
  extra-members    the Register response carries a member the protocol does not define
  variadic         no defect: fake.echo takes any number of parameters and returns them
                   joined by spaces (the protocol leaves parameter counts to the plugin)
ZBXC_FAKE_PROTO is the protocol version it accepts (default 6.0.13).
ZBXC_FAKE_NAME is the name it registers (default Fake).
ZBXC_FAKE_RECORD, if set, is a file to which every message received from the agent is
appended as one JSON line {"pid", "initial", "message"} (to check a real agent's messages).
"""
import json
import os
import socket
import struct
import sys
import time

MODE = os.environ.get("ZBXC_FAKE_MODE", "good")
PROTO = os.environ.get("ZBXC_FAKE_PROTO", "6.0.13")
NAME = os.environ.get("ZBXC_FAKE_NAME", "Fake")
METRICS = {"fake.ping": "Returns 1.", "fake.echo": "Returns its first parameter."}
KNOWN_OPTIONS = {"System", "Greeting"}


def send(conn, obj, typ=1):
    data = json.dumps(obj).encode()
    conn.sendall(struct.pack("<II", typ, len(data)) + data)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def log(conn, message):
    if MODE == "bad-log":
        send(conn, {"id": 7, "type": 1, "severity": 9, "message": message})
    else:
        send(conn, {"id": 0, "type": 1, "severity": 5, "message": message})


def option_names(tree):
    if not isinstance(tree, dict):
        return set()
    return {n.get("Name") for n in tree.get("Nodes") or [] if isinstance(n, dict) and "Name" in n}


def record(req):
    path = os.environ.get("ZBXC_FAKE_RECORD")
    if path:
        initial = sys.argv[2] if len(sys.argv) > 2 else ""
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "initial": initial, "message": req}) + "\n")


def export(req):
    key, params = req.get("key"), req.get("parameters") or []
    if key == "fake.ping":
        if params:
            return None, "Too many parameters."
        return 1, None
    if key == "fake.echo":
        if MODE == "variadic":
            return " ".join(params), None
        if len(params) > 1:
            return None, "Too many parameters."
        return (params[0] if params else ""), None
    return None, "Unknown metric %s." % key


def main():
    if len(sys.argv) < 2:
        sys.exit("no socket provided")
    conn = None
    deadline = time.time() + 3
    while conn is None:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            conn = s
        except OSError:
            if time.time() > deadline:
                sys.exit("cannot connect")
            time.sleep(0.05)
    exports = 0
    while True:
        header = recv_exact(conn, 8)
        if header is None:
            sys.exit(1)
        typ, size = struct.unpack("<II", header)
        body = recv_exact(conn, size)
        if typ != 1 or body is None:
            sys.exit(1)
        req = json.loads(body)
        record(req)
        rid, rtype = req.get("id", 0), req.get("type")
        if MODE == "silent":
            continue
        log(conn, "plugin %s executing request type %s" % (NAME, rtype))
        if rtype == 2:
            resp = {"id": rid, "type": 3, "name": ""}
            if req.get("version") != PROTO and MODE != "any-version":
                resp["error"] = ("plugin cannot be loaded by agent using protocol version %s, "
                                 "the supported version is %s" % (req.get("version"), PROTO))
            else:
                metrics = [x for kv in METRICS.items() for x in kv]
                if MODE == "odd-metrics":
                    metrics = metrics[:-1]
                if MODE == "bad-descriptions":
                    metrics = [x if i % 2 == 0 else x.lower().rstrip(".") for i, x in enumerate(metrics)]
                interfaces = {"bad-interfaces": 9, "text-interfaces": "3"}.get(MODE, 3)
                resp.update(name=NAME, metrics=metrics, interfaces=interfaces)
                if MODE == "extra-members":
                    resp["build"] = "fake-1"
            send(conn, resp)
            if MODE == "not-json":
                conn.sendall(struct.pack("<II", 1, 8) + b"not json")
        elif rtype == 5:
            if MODE == "bad-frame":
                conn.sendall(struct.pack("<II", 2, 2) + b"{}")
            if MODE == "trailing-bytes":
                conn.sendall(b"\x01\x00\x00")
            if MODE != "no-exit":
                # Exit at once, as the 6.0 SDK does (os.Exit(0)): a slower exit races with
                # agent2 6.0.14's SIGCHLD handler, which then panics.
                os._exit(0)
        elif rtype == 6:
            exports += 1
            if MODE == "crash-export":
                sys.exit(2)
            if MODE == "crash-parameters" and len(req.get("parameters") or []) > 3:
                sys.exit(2)
            value, err = export(req)
            resp = {"id": rid + 1000 if MODE == "wrong-id" else rid, "type": 7}
            if err:
                resp["error"] = err
            else:
                resp["value"] = value
            send(conn, resp)
        elif rtype == 9:
            names = option_names(req.get("private_options"))
            unknown = names if MODE == "strict-options" else names - KNOWN_OPTIONS
            resp = {"id": rid, "type": 10}
            if unknown and MODE != "lax-options":
                resp["error"] = "Unknown option %s." % sorted(unknown)[0]
            send(conn, resp)
        elif rtype == 8:
            if MODE == "crash-configure":
                sys.exit(2)
            unknown = option_names(req.get("private_options")) - KNOWN_OPTIONS
            if MODE == "lax-options" and unknown:
                sys.exit(2)
        elif rtype == 4:
            pass
        else:
            log(conn, "unknown request recivied: %s" % rtype)


if __name__ == "__main__":
    main()
