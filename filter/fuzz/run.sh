#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after another, and fails if any crashed.
#
#   filter/fuzz/run.sh [SECONDS] [TARGET...]      (SECONDS defaults to 600)
#
# Installs what it needs on first use: the nightly toolchain (minimal profile) and cargo-fuzz. Each target
# starts from the committed seeds in corpus/<target>/ and grows its corpus in target/corpus/<target>/ (ignored by
# git, kept between runs). Crash inputs land in artifacts/<target>/ (ignored); logs in target/logs/<target>.log.
#
# No sanitizer: the core is safe Rust (no `unsafe`), so AddressSanitizer would find nothing the Rust checks do
# not, at a third of the speed. The build keeps debug assertions and overflow checks on.
set -euo pipefail

secs=${1:-600}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: installing the nightly toolchain (minimal profile)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

fuzz=(cargo +nightly fuzz)
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir "$here")
fi

# One build for every target, with the flags `run` uses (so `run` does not rebuild).
"${fuzz[@]}" build --fuzz-dir "$here" --sanitizer none

mkdir -p "$here/target/logs"
failed=()
summary=()
total=0
for t in "${targets[@]}"; do
    grown="$here/target/corpus/$t"
    log="$here/target/logs/$t.log"
    mkdir -p "$grown" "$here/corpus/$t"
    echo "fuzz: $t for ${secs}s"
    start=$(date +%s)
    # The first corpus directory receives new inputs: the grown one, never the committed seeds.
    if "${fuzz[@]}" run --fuzz-dir "$here" --sanitizer none "$t" "$grown" "$here/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$t")
    fi
    elapsed=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then
        execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)
    fi
    execs=${execs:-0}
    total=$((total + execs))
    line=$(printf '%-18s %-6s %14s execs in %5ss (%s exec/s)' "$t" "$status" "$execs" "$elapsed" \
        "$((execs / (elapsed > 0 ? elapsed : 1)))")
    summary+=("$line")
    echo "fuzz: $line"
    if [ "$status" != ok ]; then
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written to|assertion' "$log" | head -n 12 || true
        echo "fuzz: full log in $log"
    fi
done

echo
echo "fuzz summary (${secs}s per target):"
printf '  %s\n' "${summary[@]}"
echo "  total executions: $total"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (reproduce: cargo +nightly fuzz run --fuzz-dir filter/fuzz -s none TARGET ARTIFACT)"
    exit 1
fi
