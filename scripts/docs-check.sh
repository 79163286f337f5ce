#!/usr/bin/env bash
# Runs the examples of the docs against the release binary build/lenz, so that README.md and
# docs/*.md cannot drift from the program (issue 29). scripts/test.sh runs it; by hand:
#   scripts/docs-check.sh [FILE.md...]      default: README.md and docs/*.md
# except docs/ARCHITECTURE.md and docs/RELIABILITY.md, which are written to another convention
# (their sh blocks are build recipes: scripts/fuzz.sh, which CI runs itself).
#
# The convention (docs/testing.md says the same):
# - A fenced block that opens with ```sh at the start of a line is run with bash (set -e), and one
#   that opens with ```python with /usr/bin/python3 (PYTHONPATH=build/python).
# - In a ```console block, the lines that start with "$ " are commands (a line ending in "\" goes
#   on to the next), run one by one in order; the other lines are their output as shown. A command
#   whose shown output starts with "lenz: error:" must fail; every other command must succeed.
# - The line right before a block may hold one marker:
#     <!-- output checked -->     (console blocks) the output must also be what is shown, trailing
#                                 blanks aside, where a line "..." stands for any number of lines
#                                 and the speed and time of a training epoch ("5237 img/s  11s")
#                                 may differ.
#                                 The figures were recorded with 2 threads on a CPU with AVX-512
#                                 and AVX512-BF16 (a virtual AMD EPYC, Zen 4), and oneDNN's kernels
#                                 (so a training's rounding, and a plan's workspace) differ with the
#                                 CPU: outputs are compared only where lenz uses 2 threads and the
#                                 CPU has avx512_bf16. DOCS_CHECK_OUTPUT=1 compares them anyway,
#                                 DOCS_CHECK_OUTPUT=0 never.
#     <!-- shortened -->          every `lenz train` of the block runs with --epochs 1
#                                 --limit-train 256 --limit-test 128 --no-report and without
#                                 --dtype bf16 (which CPUs without AVX512-BF16 refuse): the long
#                                 recipes (a minute to 17 minutes each) then take seconds.
#     <!-- not run: WHY -->       the block is not run (say why: a cluster, root, 25 minutes, ...).
#     <!-- run if exists: PATH -->  run only where PATH (from the repository root) exists.
#     <!-- same as: PATH -->      (any block) the block must hold PATH's text exactly, e.g. the
#                                 README's copy of examples/cpp/main.cpp.
# - Blocks of any other kind (```text, ```pycon, ```cpp, none) and indented blocks are never run.
#
# Each Markdown file runs in a fresh temporary directory that links the repository's build, models,
# tests, docs, tools, bench, python, examples and scripts, so `build/lenz`, `models/...` and
# `docs/make-image-folder.py` work there and everything a block writes (runs/, shoes/, x.npy)
# stays there. The blocks of one file run in order, so a later one sees what an earlier one wrote;
# after a failure the file's remaining blocks are skipped. A failure names the file and the line of
# the block (or of the command, in a console block), with the command's output; the exit status is
# then 1. Each command may take at most DOCS_CHECK_TIMEOUT seconds (default 300).
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)

files=()
if [ $# -eq 0 ]; then
  files=("$repo/README.md")
  for f in "$repo"/docs/*.md; do
    case "$(basename "$f")" in ARCHITECTURE.md|RELIABILITY.md) ;; *) files+=("$f") ;; esac
  done
else
  for f in "$@"; do files+=("$(readlink -f "$f")"); done
fi
if [ ! -x "$repo/build/lenz" ]; then
  echo "docs-check: FAILED: $repo/build/lenz is missing (build the release preset first)" >&2
  exit 1
fi
timeout_s="${DOCS_CHECK_TIMEOUT:-300}"
work=$(mktemp -d "${TMPDIR:-/tmp}/lenz-docs-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Whether shown figures can be compared here: lenz's default thread count and the CPU's features.
threads=$("$repo/build/lenz" summary "$repo/models/fashion.lenz" | sed -n 's/^(plan for \([0-9]*\) thread.*/\1/p')
compare="${DOCS_CHECK_OUTPUT:-auto}"
if [ "$compare" = auto ]; then
  compare=0
  if [ "$threads" = 2 ] && grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then compare=1; fi
fi

# Compares shown output ($1) with actual output ($2): "..." matches any number of lines.
cat >"$work/match.py" <<'EOF'
import re, sys
def lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        # Speeds and times differ from run to run: "5237 img/s  11s" is compared as "N img/s  Ns".
        text = [re.sub(r"\b[0-9]+ img/s  [0-9]+s\b", "N img/s  Ns", l.rstrip()) for l in f.read().split("\n")]
    while text and not text[-1]:
        text.pop()
    return text
want, got = lines(sys.argv[1]), lines(sys.argv[2])
def match(i, j):
    while i < len(want):
        if want[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        if j >= len(got) or want[i] != got[j]:
            return False
        i, j = i + 1, j + 1
    return j == len(got)
if not match(0, 0):
    import difflib
    sys.stdout.writelines(l + "\n" for l in difflib.unified_diff(want, got, "shown", "actual", lineterm=""))
    sys.exit(1)
EOF

# Splits a file into blocks: $work/blocks/N.info ("LINE KIND MARKER...") and N.body.
extract() {
  rm -rf "$work/blocks"; mkdir -p "$work/blocks"
  awk -v dir="$work/blocks" '
    function flush() { close(body) }
    inblock && /^```[ \t]*$/ { inblock = 0; flush(); prev = ""; next }
    inblock { print > body; next }
    /^```/ {
      kind = substr($0, 4); gsub(/[ \t]/, "", kind); if (kind == "") kind = "none"
      n++; inblock = 1; body = dir "/" n ".body"; printf "" > body
      marker = "-"
      if (prev ~ /^<!-- *(output checked|shortened|not run:.*|run if exists:.*|same as:.*) *-->$/) {
        marker = prev; sub(/^<!-- */, "", marker); sub(/ *-->$/, "", marker)
      }
      print NR, kind, marker > (dir "/" n ".info"); close(dir "/" n ".info")
      next
    }
    { prev = $0 }
  ' "$1"
}

# Rewrites the `lenz train` commands of stdin for a shortened run.
shorten() {
  sed -E '/lenz train/{
    s/[[:space:]]+#[^"'"'"']*$//
    s/[[:space:]]--(epochs|limit-train|limit-test)[[:space:]]+[0-9]+//g
    s/[[:space:]]--dtype[[:space:]]+(bf16|bfloat16)//g
    s/[[:space:]]--no-report//g
    s/$/ --epochs 1 --limit-train 256 --limit-test 128 --no-report/
  }'
}

# Joins lines that end in a backslash.
join_lines() { sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}'; }

failures=0
fail() { # FILE LINE WHAT OUTPUT-FILE
  echo "docs-check: FAILED: $1:$2: $3" >&2
  [ -n "${4:-}" ] && [ -s "$4" ] && tail -n 40 "$4" | sed 's/^/    /' >&2
  failures=$((failures + 1))
}

start_all=$(date +%s)
for file in "${files[@]}"; do
  rel=${file#"$repo/"}
  extract "$file"
  dir="$work/run-$(basename "$file" .md)"
  mkdir -p "$dir"
  for d in build models tests docs tools bench python examples scripts; do ln -s "$repo/$d" "$dir/$d"; done
  count=$(find "$work/blocks" -name '*.info' | wc -l)
  ran=0 skipped=0 file_failed=0 start=$(date +%s.%N)
  for n in $(seq 1 "$count"); do
    read -r line kind marker <"$work/blocks/$n.info"
    body="$work/blocks/$n.body"
    if [ "${marker#same as: }" != "$marker" ]; then
      if ! diff -u "$repo/${marker#same as: }" "$body" >"$work/diff" 2>&1; then
        fail "$rel" "$line" "the block is not the text of ${marker#same as: } (- file, + block)" "$work/diff"
      fi
      continue
    fi
    case "$kind" in sh|python|console) ;; *) continue ;; esac
    case "$marker" in
      "not run:"*) skipped=$((skipped + 1)); continue ;;
      "run if exists:"*)
        if [ ! -e "$repo/${marker#run if exists: }" ]; then skipped=$((skipped + 1)); continue; fi ;;
    esac
    if [ "$file_failed" = 1 ]; then skipped=$((skipped + 1)); continue; fi
    ran=$((ran + 1))
    out="$work/out"
    case "$kind" in
      sh)
        script="$work/script.sh"
        if [ "$marker" = shortened ]; then join_lines <"$body" | shorten >"$script"; else cp "$body" "$script"; fi
        if ! (cd "$dir" && timeout "$timeout_s" bash -e "$script" </dev/null) >"$out" 2>&1; then
          fail "$rel" "$line" "the sh block failed" "$out"; file_failed=1
        fi ;;
      python)
        if ! (cd "$dir" && PYTHONPATH="$repo/build/python" timeout "$timeout_s" /usr/bin/python3 "$body" </dev/null) >"$out" 2>&1; then
          fail "$rel" "$line" "the python block failed" "$out"; file_failed=1
        fi ;;
      console)
        # One command and its shown output at a time: $work/cmd, $work/want.
        k=0 cmd_line=0
        : >"$work/cmds"
        awk -v dir="$work" -v base="$line" '
          function close_cmd() { if (k) { close(dir "/cmd." k); close(dir "/want." k) } }
          cont { sub(/\\$/, "", cmdtext); cmdtext = cmdtext " " $0; if ($0 !~ /\\$/) { print cmdtext > (dir "/cmd." k); cont = 0 }; next }
          /^\$ / { close_cmd(); k++; cmdtext = substr($0, 3); printf "" > (dir "/want." k)
                   print k, base + NR > (dir "/cmds")
                   if ($0 ~ /\\$/) cont = 1; else print cmdtext > (dir "/cmd." k); next }
          k { print > (dir "/want." k) }
          END { close_cmd(); close(dir "/cmds") }
        ' "$body"
        while read -r k cmd_line; do
          cmd=$(cat "$work/cmd.$k")
          [ "$marker" = shortened ] && cmd=$(printf '%s\n' "$cmd" | join_lines | shorten)
          status=0
          (cd "$dir" && timeout "$timeout_s" bash -c "$cmd" </dev/null) >"$out" 2>&1 || status=$?
          if head -n 1 "$work/want.$k" | grep -q '^lenz: error:'; then
            if [ "$status" = 0 ]; then fail "$rel" "$cmd_line" "expected an error from: $cmd" "$out"; file_failed=1; break; fi
          elif [ "$status" != 0 ]; then
            fail "$rel" "$cmd_line" "exit status $status from: $cmd" "$out"; file_failed=1; break
          fi
          if [ "$marker" = "output checked" ] && [ "$compare" = 1 ]; then
            if ! /usr/bin/python3 "$work/match.py" "$work/want.$k" "$out" >"$work/diff" 2>&1; then
              fail "$rel" "$cmd_line" "the output differs from what is shown (- shown, + actual): $cmd" "$work/diff"
              file_failed=1; break
            fi
          fi
        done <"$work/cmds"
        rm -f "$work"/cmd.* "$work"/want.* ;;
    esac
  done
  printf 'docs-check: %s: %d blocks run, %d not run, %.1f s%s\n' "$rel" "$ran" "$skipped" \
    "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$([ "$file_failed" = 1 ] && echo ', FAILED' || true)"
done
[ "$compare" = 1 ] || echo "docs-check: shown outputs were not compared (lenz uses $threads threads here; they were recorded with 2, on a CPU with avx512_bf16; DOCS_CHECK_OUTPUT=1 compares them)"
if [ "$failures" -gt 0 ]; then
  echo "docs-check: FAILED: $failures block(s) (see above); $(( $(date +%s) - start_all )) s" >&2
  exit 1
fi
echo "docs-check: every example ran as shown ($(( $(date +%s) - start_all )) s)"
