#!/usr/bin/env python3
"""Turns every C++ snippet of README.md and docs/*.md into a translation
unit, so that the build compiles them (test/CMakeLists.txt, target
nmhash_doc_snippets): a snippet that does not compile fails the test
command.

A snippet is a ```cpp block. Its #include lines open the file and are the
only nmhash headers it gets, so a missing include is an error. The other
lines become the body of a function. An HTML comment right before the
block gives what the reader is assumed to have (variables, in C++) and
where the snippet compiles:

    <!-- snippet: needs image; context: std::vector<float> outputs(480); -->

needs: cpu (default), image, mpi or cuda (a .cu unit). The context text
after "context:" is placed before the body.

Usage: extract_snippets.py SOURCE_DIR OUT_DIR; prints one line per unit:
KIND=PATH.
"""
import glob
import os
import re
import sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
docs = [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))
written = []
for doc in docs:
    with open(doc, encoding="utf-8") as f:
        lines = f.read().split("\n")
    rel = os.path.relpath(doc, src)
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```cpp":
            i += 1
            continue
        start = i + 1
        # The comment just above the fence (blank lines allowed between).
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        meta = ""
        if j >= 0 and lines[j].rstrip().endswith("-->"):
            k = j
            while k >= 0 and "<!--" not in lines[k]:
                k -= 1
            meta = " ".join(lines[k:j + 1])
            meta = meta[meta.index("<!--") + 4:meta.rindex("-->")].strip()
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            sys.exit(f"{rel}:{start}: a ```cpp block is not closed")
        i += 1
        needs, context = "cpu", ""
        if meta.startswith("snippet:"):
            m = re.search(r"needs:\s*(\w+)", meta)
            if m:
                needs = m.group(1)
            if "context:" in meta:
                context = meta[meta.index("context:") + len("context:"):].strip()
        if needs not in ("cpu", "image", "mpi", "cuda"):
            sys.exit(f"{rel}:{start}: unknown snippet kind {needs!r} (cpu, image, mpi, cuda)")
        includes = [l for l in body if l.lstrip().startswith("#include")]
        code = ["" if l.lstrip().startswith("#include") else l for l in body]
        name = re.sub(r"[^A-Za-z0-9]", "_", rel) + f"_{start}"
        path = os.path.join(out, name + (".cu" if needs == "cuda" else ".cpp"))
        text = "\n".join([
            f"// Generated from {rel}, line {start}, by test/docs/extract_snippets.py.",
            *[l.strip() for l in includes],
            "",
            f"namespace nmhash_doc_{name} {{",
            "[[maybe_unused]] void snippet(int argc, char** argv) {",
            "  (void)argc;",
            "  (void)argv;",
            f"#line 1 \"{rel} (context of line {start})\"",
            context,
            f"#line {start + 1} \"{rel}\"",
            *code,
            "}",
            "}  // namespace",
            "",
        ])
        old = open(path).read() if os.path.exists(path) else None
        if old != text:  # unchanged units keep their time stamp
            with open(path, "w") as f:
                f.write(text)
        written.append(f"{needs}={path}")
if not written:
    sys.exit("no ```cpp snippet found")
# Units of snippets that moved or went away.
kept = {w.split("=", 1)[1] for w in written}
for name in os.listdir(out):
    path = os.path.join(out, name)
    if path not in kept and name.endswith((".cpp", ".cu")):
        os.remove(path)
print("\n".join(written))
