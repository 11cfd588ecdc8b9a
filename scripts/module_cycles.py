#!/usr/bin/env python3
"""Checks the import graph between the modules of each library crate: a module's dependencies are the
`crate::x` / `super::x` paths it names outside its test module. Fails when a crate has an import cycle that
is not listed below (the cycles the design needs, explained in ARCHITECTURE.md)."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["engineio-proto", "engineio-server", "socketio-proto", "socketio-server", "session-bridge", "socketio-redis", "socketio-admin"]
# The one cycle the design needs: socketio-server's object graph (server → client → socket → namespace →
# adapter, each reaching back to its owner), with the broadcast operators, the emit path, and the handlers
# (held by a socket's listeners, called with the socket) on top of it.
ALLOWED = {
    "socketio-server": [
        {"adapter", "client", "emit", "extract", "handler", "listeners", "namespace", "operators", "server", "socket"}
    ],
}


def modules(src):
    out = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]) or not parts:
            continue
        text = f.read_text()
        text = text.split("#[cfg(test)]")[0]
        text = re.sub(r"//[^\n]*", "", text)
        deps = set(re.findall(r"\b(?:crate|super)::([a-z_][a-z0-9_]*)", text))
        out[parts[0]] = out.get(parts[0], set()) | deps
    return {m: {d for d in ds if d in out and d != m} for m, ds in out.items()}


def sccs(graph):
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                result.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


failed = False
for crate in CRATES:
    cycles = sccs(modules(ROOT / crate / "src"))
    allowed = ALLOWED.get(crate, [])
    for c in cycles:
        status = "allowed" if c in allowed else "UNEXPECTED"
        failed |= c not in allowed
        print(f"{crate}: {status} cycle {' '.join(sorted(c))}")
    for a in allowed:
        if a not in cycles:
            print(f"{crate}: the allowed cycle {' '.join(sorted(a))} is gone; update scripts/module_cycles.py")
            failed = True
print("module cycles: " + ("FAILED" if failed else "ok"))
sys.exit(1 if failed else 0)
