#!/usr/bin/env python3
"""Self and inclusive instruction counts per function from a callgrind out file.

    load-tests/lib/cg-top.py FILE [N] [FILTER]

callgrind_annotate 3.19 folds everything into `clone` for multi-threaded Rust programs
dumped with callgrind_control; this reads the format directly. Names are demangled by
rustfilt if it is installed, else shown as recorded.
"""
import collections, re, sys

path = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
flt = sys.argv[3] if len(sys.argv) > 3 else None
names = {}
def name(spec):
    m = re.match(r"\((\d+)\)(?:\s+(.*))?", spec)
    if not m:
        return spec
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), spec)

self_cost = collections.Counter()
incl_calls = collections.Counter()
fn = None
in_call = False
total = 0
cfn = None
with open(path, errors="replace") as f:
    for line in f:
        line = line.rstrip("\n")
        if line.startswith("fn="):
            fn = name(line[3:]); continue
        if line.startswith("cfn="):
            cfn = name(line[4:]); continue
        if line.startswith("calls="):
            in_call = True; continue
        if line.startswith("summary:"):
            total = int(line.split()[1]); continue
        if not line or not (line[0].isdigit() or line[0] in "+-*"):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        cost = int(parts[1])
        if in_call:
            if cfn != fn:
                incl_calls[(fn, cfn)] += cost
            in_call = False
        else:
            self_cost[fn] += cost

incl = collections.Counter(self_cost)
for (caller, callee), c in incl_calls.items():
    incl[caller] += c
print(f"total {total:,} Ir")
print("== self ==")
for f_, c in self_cost.most_common():
    if flt and not re.search(flt, f_):
        continue
    print(f"{c:>14,} {100*c/total:5.1f}%  {f_[:160]}")
    top -= 1
    if top <= 0: break
if len(sys.argv) > 4:
    target = sys.argv[4]
    print(f"== callers of /{target}/ ==")
    callers = collections.Counter()
    for (caller, callee), c in incl_calls.items():
        if re.search(target, callee):
            callers[caller] += c
    for f_, c in callers.most_common(25):
        print(f"{c:>14,} {100*c/total:5.1f}%  {f_[:180]}")
if len(sys.argv) > 5:
    pat = sys.argv[5]
    print(f"== inclusive of /{pat}/ ==")
    for f_, c in sorted(((f_, c) for f_, c in incl.items() if re.search(pat, f_)), key=lambda x: -x[1])[:30]:
        print(f"{c:>14,} {100*c/total:5.1f}%  {f_[:180]}")
