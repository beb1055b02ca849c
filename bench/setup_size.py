#!/usr/bin/env python3
"""What `apt-get install --no-install-recommends` would fetch on a minimal Debian 12 for a list of
packages, estimated from this machine's apt indexes (/var/lib/apt/lists): the closure over
Pre-Depends and Depends (the first alternative of each; a virtual package by its first provider),
minus the packages of priority required or important, which every Debian install has. Prints the
count, the download (Size) and the installed size (Installed-Size). It reads no network.

    bench/setup_size.py PACKAGE…      (the README's figures: scripts/setup's --app list, then the whole list)
"""
import glob
import re
import subprocess
import sys

packages, provides = {}, {}
# main, then -security and -updates (sorted after it): a later stanza, the newer version, wins.
for index in sorted(glob.glob("/var/lib/apt/lists/*_Packages*"), key=lambda f: ("security" in f or "updates" in f, f)):
    text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", index], capture_output=True, text=True, check=True).stdout
    for stanza in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.MULTILINE))
        name = fields.get("Package")
        if not name:
            continue
        packages[name] = fields
        for provided in fields.get("Provides", "").split(","):
            provided = re.split(r"[ (]", provided.strip())[0]
            if provided:
                provides.setdefault(provided, name)


def dependencies(fields):
    for key in ("Pre-Depends", "Depends"):
        for item in fields.get(key, "").split(","):
            if item.strip():
                yield re.split(r"[ :(]", item.split("|")[0].strip())[0]


def closure(names):
    seen, stack = {}, list(names)
    while stack:
        name = stack.pop()
        name = name if name in packages else provides.get(name, name)
        fields = packages.get(name)
        if not fields or name in seen or fields.get("Priority") in ("required", "important"):
            continue
        seen[name] = fields
        stack.extend(dependencies(fields))
    return seen


if len(sys.argv) < 2:
    sys.exit(__doc__)
missing = [n for n in sys.argv[1:] if n not in packages and n not in provides]
if missing:
    sys.exit("setup_size: not in the apt indexes: " + " ".join(missing))
found = closure(sys.argv[1:])
download = sum(int(f.get("Size", 0)) for f in found.values()) / 1e6
installed = sum(int(f.get("Installed-Size", 0)) for f in found.values()) / 1e3  # Installed-Size is in KiB
print(f"{len(found)} packages, {download:.0f} MB to download, {installed:.0f} MB installed")
