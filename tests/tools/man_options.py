#!/usr/bin/env python3
"""Each tool's --help and its manual page must list the same options.

    man_options.py TOOL PAGE [TOOL PAGE ...]

--help side: the option column of every line that starts with blanks and a dash, plus
the options in the usage line(s). Page side: the tag line after each .TP in the OPTIONS
section (roff writes the dashes as \\-). Every difference is printed on its own line, as
"speadcast-send: --foo in --help but not in man/speadcast-send.1", so whoever adds an
option sees what to write where. Exit status 1 on any difference.
"""
import os
import re
import subprocess
import sys

OPT = re.compile(r"(?<![\w-])--?[A-Za-z0-9][A-Za-z0-9-]*")


def help_options(tool):
    out = subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SystemExit(f"{tool} --help: exit status {out.returncode}")
    opts = set()
    for line in out.stdout.splitlines():
        if re.match(r"\s*usage:", line, re.I):
            opts.update(OPT.findall(line.split(":", 1)[1]))
        elif re.match(r"\s+-", line):
            # The option column ends at the first run of two blanks before the text.
            opts.update(OPT.findall(re.split(r"\s{2,}", line.strip(), 1)[0]))
    return opts


def page_options(page):
    opts = set()
    lines = open(page, encoding="utf-8").read().splitlines()
    section = None
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"').upper()
        elif line.startswith(".TP") and section == "OPTIONS" and i + 1 < len(lines):
            tag = re.sub(r"\\f[BIRP]", "", lines[i + 1]).replace("\\-", "-")
            opts.update(OPT.findall(tag))
    return opts


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        raise SystemExit(__doc__)
    problems = []
    for tool, page in zip(argv[0::2], argv[1::2]):
        name = os.path.basename(tool)
        shown = "man/" + os.path.basename(page)
        in_help, in_page = help_options(tool), page_options(page)
        if not in_help:
            problems.append(f"{name}: no options found in --help")
        if not in_page:
            problems.append(f"{name}: no options found in {shown}")
        for o in sorted(in_help - in_page):
            problems.append(f"{name}: {o} in --help but not in {shown}")
        for o in sorted(in_page - in_help):
            problems.append(f"{name}: {o} in {shown} but not in --help")
        if in_help == in_page:
            print(f"ok: {name}: {len(in_help)} options, same in --help and {shown}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
