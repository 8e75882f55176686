#!/usr/bin/env python3
"""Summarise a node --cpu-prof profile (e.g. from BENCH_PROF=DIR npm run bench):
self time per function, and optionally who calls one of them.

  prof_top.py FILE.cpuprofile [N]            the N (default 30) largest self times
  prof_top.py FILE.cpuprofile --callers FN   the call chains (4 deep) under FN's samples
"""
import collections
import json
import sys

p = json.load(open(sys.argv[1]))
nodes = {n["id"]: n for n in p["nodes"]}
parent = {c: n["id"] for n in p["nodes"] for c in n.get("children", [])}
samples = collections.Counter(p["samples"])
total = sum(samples.values())


def name(i):
    cf = nodes[i]["callFrame"]
    return f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber'] + 1}"


if len(sys.argv) > 3 and sys.argv[2] == "--callers":
    agg = collections.Counter()
    for nid, c in samples.items():
        if nodes[nid]["callFrame"]["functionName"] != sys.argv[3]:
            continue
        chain, i = [], nid
        for _ in range(4):
            i = parent.get(i)
            if i is None:
                break
            chain.append(name(i))
        agg[" < ".join(chain)] += c
    for k, v in agg.most_common(15):
        print(f"{100 * v / total:5.1f}% {k}")
else:
    agg = collections.Counter()
    for nid, c in samples.items():
        agg[name(nid)] += c
    for k, v in agg.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 30):
        print(f"{100 * v / total:5.1f}% {k}")
    print(f"samples {total}")
