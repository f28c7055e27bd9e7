#!/usr/bin/env bash
# Instructions per operation, cano side by side with its peer, counted by callgrind: the
# same figure on a loaded machine as on a quiet one, so a regression shows without one.
#
#   tests/benches/callgrind.sh                 # every pair (a few minutes after the build)
#   tests/benches/callgrind.sh cron workflow   # only operations whose name contains a word
#
# Needs valgrind (`apt-get install valgrind`). Each operation of benches/instructions.rs
# runs twice under `valgrind --tool=callgrind`, with LOW and HIGH repetitions; the
# difference in instructions divided by the difference in repetitions is the cost of one
# operation, with set-up, runtime start and process exit cancelled out. Ratios are cano's
# count over the peer's (below 1: cano executes fewer instructions). Instructions are not
# time (cache misses, branch mispredictions and memory stalls count for nothing here), so
# read them next to the criterion benches, not instead of them.
#
# cano 0.15.4 has its own workspace (tests/peer015, see its Cargo.toml); with PEER015=1
# this script also counts its `instructions` bench there, which needs a toolchain that
# accepts its rust-version (it is built with --ignore-rust-version).
set -euo pipefail
cd "$(dirname "$0")/../.."

LOW=${LOW:-200}
HIGH=${HIGH:-1200}

# "cano-operation peer-operation" pairs; a row labelled in-place does different work from
# its peer (cano 0.12 spawns every branch) and is shown for what it is. Against the floor (a
# bare loop that spawns every run), the last column is what the scheduler spends of its own.
PAIRS=(
  "cron-next/feb-29/cano cron-next/feb-29/cron-parser-0.12"
  "cron-next/dom-and-dow/cano-and cron-next/dom-and-dow/cron-parser-0.12"
  "workflow/1-state/cano workflow/1-state/cano-0.12"
  "workflow/10-states/cano workflow/10-states/cano-0.12"
  "split-16/spawned/cano split-16/spawned/cano-0.12"
  "split-16/in-place/cano split-16/spawned/cano-0.12"
  "scheduled-run/workflow/cano scheduled-run/workflow/cano-0.12"
  "scheduled-run/job_fn/cano scheduled-run/workflow/cano-0.12"
  "scheduled-run/job_fn/cano scheduled-run/floor/bare-spawning-loop"
  "scheduled-run/workflow/cano scheduled-run/floor/bare-spawning-loop"
  "trigger/workflow/cano trigger/workflow/cano-0.12"
  "trigger/job_fn/cano trigger/workflow/cano-0.12"
)

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

bench_binary() { # <cargo args...>: the path of the built `instructions` bench
  cargo bench "$@" --bench instructions --no-run --message-format=json 2>/dev/null |
    grep '"executable":"[^"]*instructions[^"]*"' -o | tail -1 | cut -d'"' -f4
}

OURS=$(bench_binary -p cano-tests --locked)
[ -x "$OURS" ] || { echo "could not build the instructions bench" >&2; exit 1; }
PEER015_BIN=""
if [ "${PEER015:-0}" = 1 ]; then
  PEER015_BIN=$(cd tests/peer015 && bench_binary --ignore-rust-version)
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

count() { # <binary> <operation> <repetitions>: instructions of one process
  local file="$out/cg.$$.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$file" "$1" "$2" "$3" >/dev/null 2>&1
  awk '/^(totals|summary):/ { print $2; exit }' "$file"
}

declare -A PER_OP
per_op() { # <binary> <cache key> [operation]: instructions per operation into $RESULT
  local key="$2" op="${3:-$2}"
  if [ -z "${PER_OP[$key]:-}" ]; then
    local low high
    low=$(count "$1" "$op" "$LOW")
    high=$(count "$1" "$op" "$HIGH")
    PER_OP[$key]=$(( (high - low) / (HIGH - LOW) ))
  fi
  RESULT=${PER_OP[$key]}
}

FILTERS=("$@")
wanted() { # <operation>: whether a filter word (if any) matches it
  [ ${#FILTERS[@]} -eq 0 ] && return 0
  local word
  for word in "${FILTERS[@]}"; do [[ "$1" == *"$word"* ]] && return 0; done
  return 1
}

printf '%-34s %12s   %-38s %12s   %6s %8s\n' "cano operation" "instr/op" "peer operation" "instr/op" "ratio" "cano-peer"
for pair in "${PAIRS[@]}"; do
  read -r cano peer <<<"$pair"
  wanted "$cano" || continue
  per_op "$OURS" "$cano"; a=$RESULT
  per_op "$OURS" "$peer"; b=$RESULT
  printf '%-34s %12s   %-38s %12s   %6s %8s\n' "$cano" "$a" "$peer" "$b" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')" "$((a - b))"
done

if [ -n "$PEER015_BIN" ]; then
  echo
  echo "against cano 0.15.4 (tests/peer015: its own build of cano; each cano row, then its peer's):"
  mapfile -t OPS015 < <("$PEER015_BIN" list)
  for ((i = 0; i + 1 < ${#OPS015[@]}; i += 2)); do
    cano=${OPS015[i]} peer=${OPS015[i + 1]}
    wanted "$cano" || continue
    per_op "$PEER015_BIN" "015:$cano" "$cano"; a=$RESULT
    per_op "$PEER015_BIN" "015:$peer" "$peer"; b=$RESULT
    printf '%-34s %12s   %-38s %12s   %6s %8s\n' "$cano" "$a" "$peer" "$b" \
      "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')" "$((a - b))"
  done
fi
echo "(valgrind $(valgrind --version | sed 's/valgrind-//'), LOW=$LOW HIGH=$HIGH, load: $(cut -d' ' -f1-3 /proc/loadavg))"
