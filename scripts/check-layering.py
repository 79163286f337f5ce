#!/usr/bin/env python3
"""Checks that every Lenz library uses only itself and the libraries below it, by symbols.

The include rules of cmake/LenzLibraries.cmake refuse a header from above; they cannot see a call
upwards whose declaration sits in a lower header (a function declared in model.h and defined in
formats). This does: every symbol a library leaves undefined that some Lenz library defines must be
defined in that library itself or in one below it (DEPENDS, transitively).

    scripts/check-layering.py BUILD/layering/libraries.txt

The table is one line a library, "name dep,dep path/to/liblenz_name.a" (CMake writes it). Prints
each offending symbol with the library that uses it and those that define it; exits 1 if any.
"""
import subprocess
import sys


def read_table(path):
    libraries = {}
    for line in open(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 2:  # no dependencies
            name, archive = fields
            deps = []
        else:
            name, deps, archive = fields
            deps = [d for d in deps.split(",") if d]
        libraries[name] = (deps, archive)
    return libraries


def symbols(archive):
    """(defined, undefined) sets of mangled names of an archive or shared library."""
    command = ["nm", "-P"] + (["-D"] if ".so" in archive else []) + [archive]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        # "archive[member.o]:" headers have one field; symbols are "name type [value size]".
        if len(parts) < 2 or len(parts[1]) != 1:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind not in "wv":  # weak undefined references are not uses
            defined.add(name)
    return defined, undefined - defined


def below(libraries, name):
    """The library itself and every library it depends on, transitively."""
    seen, todo = set(), [name]
    while todo:
        lib = todo.pop()
        if lib in seen:
            continue
        seen.add(lib)
        todo.extend(libraries[lib][0])
    return seen


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
    return out.stdout.splitlines() if out.returncode == 0 else names


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    libraries = read_table(sys.argv[1])
    tables = {name: symbols(archive) for name, (_, archive) in libraries.items()}
    definers = {}
    for name, (defined, _) in tables.items():
        for symbol in defined:
            definers.setdefault(symbol, set()).add(name)
    problems = []
    for name, (_, undefined) in tables.items():
        allowed = below(libraries, name)
        for symbol in sorted(undefined):
            where = definers.get(symbol)
            if where and not where & allowed:  # defined in Lenz, but only above or beside
                problems.append((name, symbol, sorted(where)))
    for (name, _, where), shown in zip(problems, demangle([p[1] for p in problems])):
        print(f"lenz_{name} uses {shown}, defined in {', '.join('lenz_' + w for w in where)}, "
              "which it does not depend on (cmake/LenzLibraries.cmake)")
    if problems:
        sys.exit(1)
    print(f"check-layering: {len(libraries)} libraries, every use of a Lenz symbol within the arrows")


if __name__ == "__main__":
    main()
