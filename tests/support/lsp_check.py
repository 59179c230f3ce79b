#!/usr/bin/env python3
"""Drives yaml-language-server over stdio the way an editor does, on one
plan file, and prints what it answered as JSON: the completion items at a
position, the hover text at another, and the diagnostics it published.

Usage: lsp_check.py SERVER FILE COMPLETION_LINE COMPLETION_COL HOVER_LINE HOVER_COL
(0-based lines and columns, as LSP counts them).
"""
import json
import select
import os
import subprocess
import sys
import time

server, path = sys.argv[1], os.path.abspath(sys.argv[2])
cl, cc, hl, hc = (int(x) for x in sys.argv[3:7])
proc = subprocess.Popen([server, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
next_id = [0]


def send(msg):
    body = json.dumps(msg).encode()
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    proc.stdin.flush()


def read():
    length = 0
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("server closed")
        line = line.strip()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(proc.stdout.read(length))


diagnostics = []
published = [False]


def request(method, params):
    next_id[0] += 1
    rid = next_id[0]
    send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    deadline = time.time() + 30
    while time.time() < deadline:
        msg = read()
        if msg.get("id") == rid and "method" not in msg:
            return msg.get("result")
        handle(msg)
    raise SystemExit(f"no answer to {method}")


def handle(msg):
    method = msg.get("method")
    if method == "textDocument/publishDiagnostics" and msg["params"]["uri"].endswith(os.path.basename(path)):
        diagnostics[:] = msg["params"]["diagnostics"]
        published[0] = True
    elif method == "workspace/configuration":
        items = msg["params"]["items"]
        send({"jsonrpc": "2.0", "id": msg["id"], "result": [{"validate": True, "hover": True, "completion": True} if i.get("section") == "yaml" else None for i in items]})
    elif "id" in msg and method:
        send({"jsonrpc": "2.0", "id": msg["id"], "result": None})


uri = "file://" + path
request("initialize", {"processId": os.getpid(), "rootUri": "file://" + os.path.dirname(path), "capabilities": {
    "textDocument": {"completion": {"completionItem": {"documentationFormat": ["markdown", "plaintext"]}},
                     "hover": {"contentFormat": ["markdown", "plaintext"]}},
    "workspace": {"configuration": True}}})
send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {"yaml": {"validate": True, "hover": True, "completion": True}}}})
send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": open(path).read()}}})
completion = request("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": cl, "character": cc}})
hover = request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": hl, "character": hc}})
# Diagnostics come as a notification after validation: read until they do.
deadline = time.time() + 15
while not published[0] and time.time() < deadline:
    ready, _, _ = select.select([proc.stdout], [], [], 0.5)
    if ready:
        handle(read())
items = completion.get("items", completion) if isinstance(completion, dict) else (completion or [])
print(json.dumps({"completion": [{"label": i.get("label"), "documentation": i.get("documentation")} for i in items],
                  "hover": hover, "diagnostics": diagnostics}))
proc.kill()
