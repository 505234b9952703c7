#!/usr/bin/env python3
"""Clang's -Wthread-safety analysis over every C++ file of the project.

The project builds with g++, which has no lock analysis. This reads the build's
compile_commands.json and compiles each project source again with clang++ in
syntax-only mode (no code generation), with the thread-safety warnings as
errors and every other warning off (clang and gcc disagree on the rest). It
fails, naming the file and the line, on any ABSL_GUARDED_BY field touched
without its lock, any ABSL_EXCLUSIVE_LOCKS_REQUIRED function called without it,
and so on.

usage: thread-safety-check.py BUILD_DIR [--jobs N]
"""
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys


def clang():
    for name in ("clang++-14", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("thread-safety-check: clang++ not found (scripts/setup-deps.sh installs clang)")


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    build = os.path.abspath(args[0])
    jobs = int(args[args.index("--jobs") + 1]) if "--jobs" in args else (os.cpu_count() or 2)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    compiler = clang()
    commands = []
    for e in entries:
        src = os.path.abspath(os.path.join(e["directory"], e["file"]))
        # The project's own sources: not generated code, not third-party.
        if not src.startswith(root + os.sep) or src.startswith(build + os.sep):
            continue
        if not src.endswith((".cc", ".cpp")):  # CUDA kernels (nvcc) have no locks
            continue
        argv = shlex.split(e["command"]) if "command" in e else list(e["arguments"])
        out = [compiler]
        skip = False
        for a in argv[1:]:
            if skip:
                skip = False
                continue
            if a in ("-o", "-MF", "-MT", "-MQ"):
                skip = True
                continue
            if a in ("-c", "-MD", "-MMD") or a.startswith("-W") or a == src or a == e["file"]:
                continue
            if a.startswith("-fsanitize") or a.startswith("-fprofile"):
                continue
            out.append(a)
        out += ["-fsyntax-only", "-Wno-everything", "-Wthread-safety", "-Werror=thread-safety", src]
        commands.append((src, e["directory"], out))
    if not commands:
        sys.exit("thread-safety-check: no project sources in compile_commands.json")

    def run(item):
        src, cwd, cmd = item
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        return src, p.returncode, p.stdout + p.stderr

    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for src, rc, text in pool.map(run, commands):
            if rc != 0:
                failed += 1
                print(f"--- {os.path.relpath(src, root)}\n{text}", end="")
    print(f"thread-safety-check: {len(commands)} files, {failed} with errors ({os.path.basename(compiler)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
