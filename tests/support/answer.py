#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal, as an operator at a terminal would,
and answers its `[y/N]` prompts: `n` to a prompt whose text contains
$ANSWER_NO, `y` to every other. Prints what the terminal showed, and exits
with the command's exit code.
"""
import os
import pty
import sys

no = os.environ.get("ANSWER_NO", "")
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
seen = b""
asked = 0
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    seen += data
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    while True:
        at = seen.find(b"[y/N] ", asked)
        if at == -1:
            break
        prompt = seen[asked:at].decode("utf-8", "replace")
        os.write(fd, b"n\n" if no and no in prompt else b"y\n")
        asked = at + len(b"[y/N] ")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
