#!/usr/bin/env bash
# Coverage-guided fuzzing of NordIQ's parsers with libFuzzer, on the stable toolchain:
# builds src/fuzz's targets with SanitizerCoverage (into target/fuzz), runs each for a
# fixed time from its seeds (fuzz/corpus/<target>/, grown in target/fuzz/corpus/<target>/),
# and reports executions, coverage and crashes. A crash is written to
# fuzz/regressions/<target>/: commit it, and the normal tests replay it from then on.
#
# Usage: scripts/fuzz.sh [--seconds N] [TARGET…]   (default: 600 s each, every target)
# Targets: ingest_json ingest_ndjson remote_write text_format wal_segment config
# The report goes to docs/fuzzing.md (the table between its fuzz:results markers).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        -h|--help) sed -n 2,11p "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    targets=(ingest_json ingest_ndjson remote_write text_format wal_segment config)
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
# The coverage flags apply to the target code only (--target keeps them off build scripts).
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "fuzz_$t"); done
echo "==> building ${#targets[@]} fuzz targets with coverage (target/fuzz)"
cargo build --release -p nordiq-fuzz --target "$triple" --target-dir target/fuzz "${bins[@]}"

rows=""
total_crashes=0
for t in "${targets[@]}"; do
    corpus="target/fuzz/corpus/$t"
    crashes="fuzz/regressions/$t"
    mkdir -p "$corpus" "$crashes"
    before=$(find "$crashes" -type f | wc -l)
    echo "==> $t for ${seconds} s"
    log="target/fuzz/$t.log"
    "target/fuzz/$triple/release/fuzz_$t" "$corpus" "fuzz/corpus/$t" \
        -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$crashes/" \
        -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1 || true
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+$' || echo 0)
    rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+$' || echo 0)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
    after=$(find "$crashes" -type f | wc -l)
    new=$((after - before))
    total_crashes=$((total_crashes + new))
    corpus_size=$(find "$corpus" -type f | wc -l)
    printf '%-14s %12s execs %8s/s  cov %6s  corpus %6s  new crashes %s\n' "$t" "$execs" "$rate" "$cov" "$corpus_size" "$new"
    rows="$rows| \`$t\` | $seconds | $execs | $rate | $cov | $corpus_size | $new | $(date -u +%Y-%m-%d) |\n"
    if [ "$new" -gt 0 ]; then
        grep -m1 -A5 -E 'panicked|ERROR' "$log" || true
    fi
done

python3 - "$seconds" "$(nproc)" "$rows" <<'PY'
import datetime, pathlib, sys
seconds, cores, rows = sys.argv[1], sys.argv[2], sys.argv[3].replace("\\n", "\n")
path = pathlib.Path("docs/fuzzing.md")
text = path.read_text()
begin, end = "<!-- fuzz:results:begin -->", "<!-- fuzz:results:end -->"
old = text[text.index(begin) + len(begin): text.index(end)] if begin in text else ""
# One row per target: this run's rows replace the targets it ran, the rest are kept.
table = {}
for line in old.splitlines() + rows.splitlines():
    if line.startswith("| `"):
        table[line.split("`")[1]] = line
header = ("| target | seconds | executions | per second | coverage (edges) | corpus | new crashes | run on |\n"
          "|---|---|---|---|---|---|---|---|\n")
body = "".join(table[t] + "\n" for t in sorted(table))
block = (begin + "\n`scripts/fuzz.sh`, " + cores + " cores; each row is a target's latest run.\n\n"
         + header + body + end)
if begin in text:
    text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
path.write_text(text)
PY
echo "$total_crashes new crashes; report in docs/fuzzing.md"
[ "$total_crashes" -eq 0 ]
