#!/usr/bin/env python3
"""Checks that core/src has no dependency cycle between its files, neither by #include nor
by calls. A module is one .c file with its own headers (foo.h, foo_internal.h). Include
edges come from the sources; call edges from the objects (a symbol one object uses and
another defines, read with nm). Usage: check_core_layers.py SRC_DIR OBJECT...
Prints the module graph in dependency order, or the cycle found (exit 1)."""
import os
import re
import subprocess
import sys

src_dir, objects = sys.argv[1], sys.argv[2:]
modules = sorted(f[:-2] for f in os.listdir(src_dir) if f.endswith('.c'))


def module_of_header(h):
    base = h[:-2]
    for m in (base, base[:-len('_internal')] if base.endswith('_internal') else None):
        if m in modules:
            return m
    return 'header:' + base  # header-only helpers (sized.h) depend on nothing here


edges = {m: set() for m in modules}
why = {}
include_re = re.compile(r'^\s*#\s*include\s+"([^"/]+\.h)"', re.M)
header_deps = {}
for f in os.listdir(src_dir):
    if f.endswith('.h'):
        header_deps[f] = include_re.findall(open(os.path.join(src_dir, f)).read())
for f in os.listdir(src_dir):
    owner = module_of_header(f) if f.endswith('.h') else f[:-2] if f.endswith('.c') else None
    if owner not in edges:
        continue
    for h in include_re.findall(open(os.path.join(src_dir, f)).read()):
        target = module_of_header(h)
        if target != owner and target in edges:
            edges[owner].add(target)
            why.setdefault((owner, target), '%s includes %s' % (f, h))

defined, used = {}, {}
for o in objects:
    m = re.sub(r'\.c\.o$|\.o$', '', os.path.basename(o))
    if m not in edges:
        continue
    out = subprocess.run(['nm', o], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == 'U':
            used.setdefault(m, set()).add(parts[1])
        elif len(parts) == 3 and parts[1] in 'TDBR':
            defined[parts[2]] = m
for m, syms in used.items():
    for s in syms:
        t = defined.get(s)
        if t and t != m:
            edges[m].add(t)
            why.setdefault((m, t), '%s calls %s' % (m, s))

# Depth-first search for a cycle; otherwise a topological order.
state, order, stack = {}, [], []


def visit(m):
    state[m] = 1
    stack.append(m)
    for t in sorted(edges[m]):
        if state.get(t) == 1:
            cyc = stack[stack.index(t):] + [t]
            print('cycle: ' + ' -> '.join(cyc))
            for a, b in zip(cyc, cyc[1:]):
                print('  ' + why[(a, b)])
            sys.exit(1)
        if t not in state:
            visit(t)
    stack.pop()
    state[m] = 2
    order.append(m)


for m in modules:
    if m not in state:
        visit(m)
for m in order:
    print('%-18s <- %s' % (m, ' '.join(sorted(edges[m])) or '(nothing)'))
print('%d modules, no cycle' % len(modules))
