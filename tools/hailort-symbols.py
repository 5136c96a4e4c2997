#!/usr/bin/env python3
"""HailoRT symbols that hailo-clip imports: a link stub for them, and their source-level proof.

  hailort-symbols.py stub  --include DIR SYMS > stub.c
      C source of a link stub: one definition per mangled symbol in SYMS (one a line), named with
      an asm label, so no HailoRT code is copied. C functions declared `HAILORTAPI hailo_status`
      in hailort.h return HAILO_NOT_IMPLEMENTED, pointer-returning ones return NULL; every other
      symbol (the C++ API, whose Expected<T> results cannot be faked) prints its name and aborts.

  hailort-symbols.py prove --include DIR [--src DIR] SYMS
      For each symbol: demangle it, find its declaration in DIR/hailo/*.h|hpp with HAILORTAPI on
      the function or an enclosing class, and (with --src, hailort/libhailort/src) its out-of-line
      definition in a .cpp that a CMakeLists.txt of the library lists. Prints PASS/FAIL lines,
      exits non-zero when any symbol fails.

Parsing is lexical (comments and strings blanked, braces tracked), enough for HailoRT's headers;
parameters are compared after spelling the typedefs the way c++filt prints them.
"""
import argparse
import os
import re
import subprocess
import sys

# Typedefs as c++filt spells them on LP64 Linux (aarch64 and x86_64 agree).
ALIASES = [
    (r"\bstd::string\b", "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >"),
    (r"\bstd::chrono::milliseconds\b", "std::chrono::duration<long, std::ratio<1l, 1000l> >"),
    (r"\bsize_t\b", "unsigned long"),
    (r"\buint64_t\b", "unsigned long"),
    (r"\bint64_t\b", "long"),
    (r"\buint32_t\b", "unsigned int"),
    (r"\bint32_t\b", "int"),
    (r"\buint16_t\b", "unsigned short"),
    (r"\bint16_t\b", "short"),
    (r"\buint8_t\b", "unsigned char"),
    (r"\bint8_t\b", "signed char"),
]
TYPE_WORDS = {"int", "long", "short", "char", "unsigned", "signed", "bool", "float", "double", "void", "const", "volatile"}


def blank(text):
    """Comments, string and char literals and preprocessor lines replaced by spaces; newlines kept."""
    out, i, n = [], 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == "#":
            j = i
            while j < n and (text[j] != "\n" or text[j - 1] == "\\"):
                j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1 : j]) + c)
            i = j + 1
            continue
        out.append(c)
        if c == "\n":
            line_start = True
        elif not c.isspace():
            line_start = False
        i += 1
    return "".join(out)


def split_top(s, sep=","):
    """Split at sep outside <> () [] nesting."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def matching(s, i, open_ch="(", close_ch=")"):
    depth = 0
    for j in range(i, len(s)):
        if s[j] == open_ch:
            depth += 1
        elif s[j] == close_ch:
            depth -= 1
            if depth == 0:
                return j
    return -1


def move_const(s):
    """`const T &` -> `T const&` everywhere, also inside template arguments."""
    out, i = [], 0
    while i < len(s):
        m = re.match(r"const\s+", s[i:])
        prev = "".join(out).rstrip()[-1:] if out else ""
        if m and (prev == "" or prev in "(,<"):
            j = i + m.end()
            k = j
            while k < len(s):
                if s[k] == "<":
                    k = matching(s, k, "<", ">") + 1
                elif re.match(r"[\w:]", s[k]) or (s[k] == " " and re.match(r" (unsigned|signed|int|long|short|char)\b", s[k:])):
                    k += 1
                else:
                    break
            out.append(move_const(s[j:k]).strip() + " const")
            i = k
            continue
        out.append(s[i])
        i += 1
    return "".join(out)


def norm_type(t):
    t = t.strip()
    for pat, rep in ALIASES:
        t = re.sub(pat, rep, t)
    t = re.sub(r"\b(?!std::)\w+::", "", t)  # class and namespace qualifiers other than std::
    t = re.sub(r"\bstd::(__cxx11::)?", "", t)
    t = move_const(t)
    return re.sub(r"\s+", "", t)


def decl_param_type(p):
    """A declared parameter without its default value and name."""
    p = split_top(p.replace("=", "\0=", 1), "\0")[0] if "=" in p else p
    p = p.strip()
    m = re.match(r"^(.*?[\w>*&\s])\s*\b([A-Za-z_]\w*)$", p)
    if m and not re.search(r"[*&>]\s*$", p):
        words = re.findall(r"[\w:]+", m.group(1))
        if m.group(2) not in TYPE_WORDS and words and not all(w in ("const", "volatile") for w in words):
            p = m.group(1)
    return norm_type(p)


def params_of(text):
    ps = split_top(text)
    if ps == ["void"]:
        return []
    return ps


class Scope:
    def __init__(self, kind, name, api, path, line, parent):
        self.kind, self.name, self.api, self.path, self.line, self.parent = kind, name, api, path, line, parent
        self.decls = []  # (name, params, const, api, line)

    def exported(self):
        s = self
        while s and s.kind == "class":
            if s.api:
                return s
            s = s.parent
        return None


def scan_header(path, rel, scopes):
    text = blank(open(path, encoding="utf-8", errors="replace").read())
    root = Scope("namespace", "", False, (), 0, None)
    stack = [root]
    toks = list(re.finditer(r"[A-Za-z_]\w*|::|[{}();:,<>=~&*\[\]]|\S", text))
    lineno = lambda pos: text.count("\n", 0, pos) + 1
    stmt = []  # tokens of the current statement
    i = 0
    while i < len(toks):
        t = toks[i].group(0)
        if t in ("namespace",) and i + 1 < len(toks):
            names, j = [], i + 1
            while j < len(toks) and toks[j].group(0) not in ("{", ";", "="):
                if re.match(r"\w", toks[j].group(0)):
                    names.append(toks[j].group(0))
                j += 1
            if j < len(toks) and toks[j].group(0) == "{":
                cur = stack[-1]
                s = Scope("namespace", "::".join(names), False, cur.path + tuple(names), lineno(toks[i].start()), cur)
                stack.append(s)
                i, stmt = j + 1, []
                continue
        if t in ("class", "struct", "union") and not (stmt and stmt[-1] in ("enum",)):
            # class [attrs] Name [final] [: bases] {   -- or a forward declaration / elaborated type
            j, words = i + 1, []
            while j < len(toks) and toks[j].group(0) not in ("{", ";", ":", "(", ")", ",", ">", "="):
                words.append(toks[j].group(0))
                j += 1
            if j < len(toks) and toks[j].group(0) == ":" and j + 1 < len(toks) and toks[j + 1].group(0) != ":":
                k = j
                while k < len(toks) and toks[k].group(0) not in ("{", ";"):
                    k += 1
                bases = [w for w in (x.group(0) for x in toks[j + 1 : k]) if re.match(r"\w", w) and w not in ("public", "protected", "private", "virtual")]
                j = k
            else:
                bases = []
            names = [w for w in words if re.match(r"[A-Za-z_]\w*$", w) and w not in ("HAILORTAPI", "final", "alignas")]
            if j < len(toks) and toks[j].group(0) == "{" and names:
                cur = stack[-1]
                name = names[-1]
                s = Scope("class", name, "HAILORTAPI" in words, cur.path + (name,), lineno(toks[i].start()), cur)
                s.bases = bases
                s.file = rel
                scopes.setdefault(s.path, []).append(s)
                stack.append(s)
                i, stmt = j + 1, []
                continue
        if t == "{":
            cur = stack[-1]
            stack.append(Scope("block", "", False, cur.path, lineno(toks[i].start()), cur))
            stmt = []
        elif t == "}":
            if len(stack) > 1:
                stack.pop()
            stmt = []
        elif t == ";":
            stmt = []
        elif t == ":" and stmt and stmt[-1] in ("public", "protected", "private"):
            stmt = []
        elif t == "(" and stack[-1].kind in ("class", "namespace") and stmt and re.match(r"[A-Za-z_~]", stmt[-1]):
            close = matching(text, toks[i].start())
            name = stmt[-1]
            if len(stmt) >= 2 and stmt[-2] == "~":
                name = "~" + name
            after = text[close + 1 : close + 200]
            const = bool(re.match(r"\s*const\b", after))
            stack[-1].decls.append((name, params_of(text[toks[i].start() + 1 : close]), const, "HAILORTAPI" in stmt, lineno(toks[i].start()), rel))
            # skip the parameter list
            while i < len(toks) and toks[i].start() <= close:
                i += 1
            stmt.append("()")
            continue
        stmt.append(t)
        i += 1
    return root


def demangle(syms):
    out = subprocess.run(["c++filt"], input="\n".join(syms) + "\n", capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def parse_demangled(d):
    """'hailort::A::B::f(int, char) const' -> (['hailort','A','B','f'], ['int','char'], True)."""
    d = d.replace("[abi:cxx11]", "")
    const = d.endswith(" const")
    if const:
        d = d[: -len(" const")]
    # the parameter list is the last top-level (...) group
    depth, start = 0, -1
    for k, ch in enumerate(d):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            start = k
            break
    if start < 0:
        return None
    name, params = d[:start], d[start + 1 : d.rindex(")")]
    return split_top(name, ":"), params_of(params), const


def c_function(include, name):
    """(return type, header, line) of `HAILORTAPI <type> name(` in include/hailo/*.h."""
    for f in sorted(os.listdir(os.path.join(include, "hailo"))):
        if not f.endswith(".h"):
            continue
        text = blank(open(os.path.join(include, "hailo", f), encoding="utf-8", errors="replace").read())
        m = re.search(r"\bHAILORTAPI\s+([\w\s\*]+?)\s*\b" + re.escape(name) + r"\s*\(", text)
        if m:
            return re.sub(r"\s+", " ", m.group(1)).strip(), "hailo/" + f, text.count("\n", 0, m.start()) + 1
    return None


def status_value(include, status):
    text = open(os.path.join(include, "hailo", "hailort.h"), encoding="utf-8").read()
    m = re.search(r"HAILO_STATUS__X\(\s*(\d+)\s*,\s*" + status + r"\b", text)
    return int(m.group(1)) if m else None


def cmd_stub(a):
    syms = [s for s in open(a.syms).read().split() if s]
    names = demangle(syms)
    notimpl = status_value(a.include, "HAILO_NOT_IMPLEMENTED")
    print("/* Generated by tools/hailort-symbols.py: a link stub for libhailort, not HailoRT. */")
    print("/* Each definition is named with an asm label; none holds HailoRT code. */")
    print("#include <stdio.h>\n#include <stdlib.h>\n#define EXPORT __attribute__((visibility(\"default\")))")
    print("static void stub_called(const char *name)\n{")
    print('    fprintf(stderr, "libhailort link stub: %s called; this library only stands in for "')
    print('            "libhailort at link time. Install the real HailoRT (h10-hailort).\\n", name);')
    print("    abort();\n}")
    for k, (s, d) in enumerate(zip(syms, names)):
        cdecl = c_function(a.include, s) if s == d else None
        if cdecl and cdecl[0] == "hailo_status" and notimpl is not None:
            print(f"/* {d}: {cdecl[1]}:{cdecl[2]} returns hailo_status -> HAILO_NOT_IMPLEMENTED */")
            print(f'EXPORT int stub_{k}(void) __asm__("{s}");\nint stub_{k}(void) {{ return {notimpl}; }}')
        elif cdecl and cdecl[0].endswith("*"):
            print(f"/* {d}: {cdecl[1]}:{cdecl[2]} returns {cdecl[0]} -> NULL */")
            print(f'EXPORT void *stub_{k}(void) __asm__("{s}");\nvoid *stub_{k}(void) {{ return NULL; }}')
        else:
            esc = d.replace("\\", "\\\\").replace('"', '\\"')
            print(f"/* {d} */")
            print(f'EXPORT void stub_{k}(void) __asm__("{s}");\nvoid stub_{k}(void) {{ stub_called("{esc}"); }}')


def bases_closure(cls, bases):
    seen, todo = set(), [cls]
    while todo:
        c = todo.pop()
        for b in bases.get(c, ()):
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def block_depth(text):
    """f(pos) -> how many non-namespace braces are open at pos (0: namespace or file scope)."""
    import bisect
    marks, stack, depth = [], [], 0
    for m in re.finditer(r"\bnamespace\b[\w\s:]*\{|\{|\}", text):
        if m.group(0) == "}":
            if stack and stack.pop() == "blk":
                depth -= 1
        elif m.group(0) == "{":
            stack.append("blk")
            depth += 1
        else:
            stack.append("ns")
        marks.append((m.end(), depth))
    pos = [p for p, _ in marks]
    return lambda at: marks[bisect.bisect_right(pos, at) - 1][1] if bisect.bisect_right(pos, at) else 0


def cpp_sources(src):
    """(path, text with comments and strings blanked, its brace depth function) per .cpp below src."""
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith(".cpp"):
                path = os.path.join(dirpath, f)
                text = blank(open(path, encoding="utf-8", errors="replace").read())
                yield path, text, block_depth(text)


def find_definitions(src, chain, params, const, bases, scopes, cmake_text):
    """Out-of-line definitions `Q::f(...) [const] {|:|= default` of hailort::chain in src/**/*.cpp."""
    classes, func = chain[1:-1], chain[-1]
    want = [norm_type(p) for p in params]
    hits = []
    pat = re.compile(r"((?:[A-Za-z_]\w*\s*::\s*)+)(~?\s*" + re.escape(func.lstrip("~")) + r")\s*\(")
    for path, text, depth in cpp_sources(src):
        for m in pat.finditer(text):
            if depth(m.start()) != 0:
                continue
            if func.startswith("~") != m.group(2).startswith("~"):
                continue
            qual = [q for q in re.split(r"\s*::\s*", m.group(1)) if q]
            if qual and qual[0] == "hailort":
                qual = qual[1:]
            if len(qual) != len(classes):
                continue
            # The first qualifier may be a class derived from the expected one (InferModelBase::InferStream
            # names InferModel::InferStream); the rest must be spelled as declared.
            if qual[1:] != classes[1:]:
                continue
            if qual[0] != classes[0]:
                # Only a nested class is reached through a derived class; Derived::f is Derived's own f,
                # and Derived::Nested is another class when Derived declares its own Nested.
                if len(classes) < 2 or classes[0] not in bases_closure(qual[0], bases):
                    continue
                if ("hailort", qual[0], qual[1]) in scopes:
                    continue
            open_at = m.end() - 1
            close = matching(text, open_at)
            after = text[close + 1 : close + 300]
            am = re.match(r"\s*(const\b)?\s*(noexcept\b)?\s*(override\b)?\s*(\{|:[^:]|=\s*default\s*;)", after)
            if not am or bool(am.group(1)) != const:
                continue
            got = [decl_param_type(p) for p in params_of(text[open_at + 1 : close])]
            if got != want:
                continue
            rel = os.path.relpath(path, src)
            listed = os.path.basename(path) in cmake_text
            hits.append((rel, text.count("\n", 0, m.start()) + 1, "::".join(qual), listed))
    return hits


def c_definition(src, name, cmake_text):
    hits = []
    pat = re.compile(r"^[\w \t\*]*\b" + re.escape(name) + r"\s*\(", re.M)
    for path, text, depth in cpp_sources(src):
        for m in pat.finditer(text):
            if depth(m.start()) != 0:
                continue
            close = matching(text, m.end() - 1)
            if re.match(r"\s*\{", text[close + 1 :]):
                hits.append((os.path.relpath(path, src), text.count("\n", 0, m.start()) + 1, name, os.path.basename(path) in cmake_text))
    return hits


def cmd_prove(a):
    syms = [s for s in open(a.syms).read().split() if s]
    names = demangle(syms)
    hdir = os.path.join(a.include, "hailo")
    scopes = {}
    for dirpath, _, files in os.walk(hdir):
        for f in sorted(files):
            if f.endswith((".h", ".hpp")):
                p = os.path.join(dirpath, f)
                scan_header(p, os.path.relpath(p, a.include), scopes)
    bases, cmake_text = {}, ""
    if a.src:
        for dirpath, _, files in os.walk(a.src):
            for f in files:
                p = os.path.join(dirpath, f)
                if f.endswith((".hpp", ".h")):
                    scan_header(p, os.path.relpath(p, a.src), scopes)
                elif f == "CMakeLists.txt":
                    cmake_text += open(p, encoding="utf-8", errors="replace").read()
    for ss in scopes.values():
        for s in ss:
            bases.setdefault(s.name, set()).update(getattr(s, "bases", []))
    ok = bad = 0
    for s, d in zip(syms, names):
        problems, where = [], []
        if s == d:  # C function
            decl = c_function(a.include, s)
            if decl:
                where.append(f"declared HAILORTAPI {decl[0]} {s}(...) at {decl[1]}:{decl[2]}")
            else:
                problems.append("no HAILORTAPI declaration in hailo/*.h")
            if a.src:
                defs = c_definition(a.src, s, cmake_text)
                if defs:
                    where.append("defined at " + ", ".join(f"src/{h[0]}:{h[1]}" for h in defs))
                    if not any(h[3] for h in defs):
                        problems.append("defining file not listed in a CMakeLists.txt")
                else:
                    problems.append("no definition in hailort/libhailort/src")
        else:
            parsed = parse_demangled(d)
            if not parsed or parsed[0][0] != "hailort" or len(parsed[0]) < 3:
                problems.append("not a hailort:: class member")
            else:
                chain, params, const = parsed
                want = [norm_type(p) for p in params]
                cls_path = tuple(chain[:-1])
                decls = []
                for sc in scopes.get(cls_path, []):
                    if not sc.file.startswith("hailo/"):
                        continue
                    for (n, ps, c, api, line, rel) in sc.decls:
                        if n == chain[-1] and c == const and [decl_param_type(p) for p in ps] == want:
                            decls.append((sc, api, line, rel))
                if not decls:
                    problems.append(f"no declaration of {'::'.join(chain)} with these parameters in hailo/*.hpp")
                else:
                    sc, api, line, rel = decls[0]
                    exp = sc.exported()
                    if api:
                        where.append(f"declared HAILORTAPI at {rel}:{line}")
                    elif exp:
                        via = "" if exp is sc else f" (enclosing {'::'.join(exp.path[1:])})"
                        where.append(f"declared at {rel}:{line} in class HAILORTAPI {exp.name} ({exp.file}:{exp.line}){via}")
                    else:
                        problems.append(f"declared at {rel}:{line}, but neither it nor its class is HAILORTAPI")
                if a.src:
                    defs = find_definitions(a.src, chain, params, const, bases, scopes, cmake_text)
                    if defs:
                        where.append("defined at " + ", ".join(f"src/{h[0]}:{h[1]} ({h[2]}::{chain[-1]})" for h in defs))
                        if not any(h[3] for h in defs):
                            problems.append("defining file not listed in a CMakeLists.txt")
                    else:
                        problems.append("no out-of-line definition in hailort/libhailort/src")
        if problems:
            bad += 1
            print(f"FAIL {d}: " + "; ".join(problems + where))
        else:
            ok += 1
            print(f"PASS {d}: " + "; ".join(where))
    print(f"source proof: {ok} of {len(syms)} symbols declared HAILORTAPI" + (" and defined in the library sources" if a.src else ""))
    return 0 if bad == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stub")
    st.add_argument("--include", required=True)
    st.add_argument("syms")
    pr = sub.add_parser("prove")
    pr.add_argument("--include", required=True)
    pr.add_argument("--src")
    pr.add_argument("syms")
    a = ap.parse_args()
    if a.cmd == "stub":
        cmd_stub(a)
        return 0
    return cmd_prove(a)


if __name__ == "__main__":
    sys.exit(main())
