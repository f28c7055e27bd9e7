#!/usr/bin/env bash
# QEMU smoke test of cano-embassy: builds the firmware in this folder (and its `footprint`
# example, the same scheduler without the test harness, also with defmt logs) for two Cortex-M machines, runs each
# under qemu-system-arm (the guest's exit code is the verdict), prints their flash and RAM
# use, and ends with "N passed, N failed".
#
# Installs what it needs: the thumbv7 rustup targets, and qemu-system-arm through apt-get.
# Run from anywhere. QEMU_TIMEOUT (seconds, default 60) bounds each run: a guest that never
# reaches its exit call would otherwise run forever.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

QEMU_TIMEOUT="${QEMU_TIMEOUT:-60}"
TARGETS=(thumbv7m-none-eabi thumbv7em-none-eabihf)

install_targets() {
  local installed missing=() target
  installed="$(rustup target list --installed)"
  for target in "${TARGETS[@]}"; do
    grep -qx "$target" <<<"$installed" || missing+=("$target")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    rustup target add "${missing[@]}"
  fi
}

install_qemu() {
  if command -v qemu-system-arm >/dev/null; then
    return
  fi
  local sudo=() release=() codename uri
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # A qemu-utils (qemu-img) from <codename>-backports would be removed by the stable suite's
  # older qemu-system-arm ("qemu-utils: Breaks: qemu-system-common (< 1:8.0)"), so take
  # qemu-system-arm from the same backports suite then. Otherwise the stable suite is fine.
  if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q '~bpo'; then
    codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
    if ! grep -qs "^[^#]*${codename}-backports" /etc/apt/sources.list \
      /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
      uri="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)"
      printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: %s\n' \
        "${uri:-http://deb.debian.org/debian}" "$codename" \
        /usr/share/keyrings/debian-archive-keyring.gpg |
        "${sudo[@]}" tee "/etc/apt/sources.list.d/${codename}-backports.sources" >/dev/null
    fi
    release=(-t "${codename}-backports")
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${release[@]}" qemu-system-arm >/dev/null
}

# build TARGET [CARGO ARGS...]: builds the release firmware, prints the ELF's path.
build() {
  local target="$1"
  shift
  cargo build --locked --release --target "$target" "$@" \
    --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1
}

# Flash = text + data (the initial values of .data are stored in flash); static RAM =
# data + bss, which includes the heap. The stack (the rest of RAM) is not counted.
report_size() {
  local elf="$1" text data bss
  if ! command -v size >/dev/null; then
    echo "size: not found (binutils); flash and RAM use not measured"
    return
  fi
  read -r text data bss _ < <(size -B "$elf" | sed -n 2p)
  echo "flash $((text + data)) B, static RAM $((data + bss)) B (text $text, data $data, bss $bss)" \
    "-- measured with: size -B $elf"
}

passed=0
failed=0

# unlinked TARGET PATTERN... -- [CARGO ARGS...]: fails if the firmware built with CARGO ARGS
# links a symbol matching a PATTERN (grep -E on demangled names). Code a program does not use
# is reached only through a pointer that using it installs (the fleet's hook table, a
# workflow's ledgered run), so the linker drops it; this keeps it so.
unlinked() {
  local target="$1" patterns=() elf found
  shift
  while [ "$1" != "--" ]; do
    patterns+=("$1")
    shift
  done
  shift
  echo "== unlinked code ($target${*:+, $*}): ${patterns[*]}"
  if ! command -v nm >/dev/null; then
    echo "nm: not found (binutils); not checked"
    return
  fi
  if ! elf="$(build "$target" "$@")" || [ -z "$elf" ]; then
    failed=$((failed + 1))
    echo "== unlinked code: FAILED (firmware did not build)"
    return
  fi
  found="$(nm -C "$elf" | grep -E "$(IFS='|'; echo "${patterns[*]}")" || true)"
  if [ -n "$found" ]; then
    failed=$((failed + 1))
    echo "$found" | head -n 10
    echo "== unlinked code: FAILED (linked, but the program never uses it)"
    return
  fi
  passed=$((passed + 1))
  echo "== unlinked code: ok"
}

# emulate MACHINE CPU ELF: runs the firmware; its exit code is QEMU's.
emulate() {
  timeout "$QEMU_TIMEOUT" qemu-system-arm -machine "$1" -cpu "$2" -nographic \
    -semihosting-config enable=on,target=native -kernel "$3" </dev/null
}

# smoke MACHINE CPU TARGET [CARGO ARGS...]
smoke() {
  local machine="$1" cpu="$2" target="$3" elf rc=0
  shift 3
  echo "== $machine ($cpu, $target${*:+, $*})"
  if ! elf="$(build "$target" "$@")" || [ -z "$elf" ]; then
    failed=$((failed + 1))
    echo "== $machine: FAILED (firmware did not build)"
    return
  fi
  report_size "$elf"
  emulate "$machine" "$cpu" "$elf" || rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "== $machine: ok"
    return
  fi
  failed=$((failed + 1))
  case "$rc" in
    124) echo "== $machine: FAILED (no exit within ${QEMU_TIMEOUT}s)" ;;
    101)
      echo "== $machine: FAILED (firmware panicked)"
      # The lean firmware does not format panic messages (see src/main.rs); show this one
      # from a build that does. A timing-dependent panic may not recur; the verdict stands.
      echo "== $machine: running again with --features panic-message, for the message only"
      if elf="$(build "$target" "$@" --features panic-message)" && [ -n "$elf" ]; then
        emulate "$machine" "$cpu" "$elf" || true
      fi
      ;;
    *) echo "== $machine: FAILED (exit code $rc)" ;;
  esac
}

install_targets
install_qemu
qemu-system-arm --version | head -n1

smoke lm3s6965evb cortex-m3 thumbv7m-none-eabi
smoke mps2-an386 cortex-m4 thumbv7em-none-eabihf --features mps2
# The same flows without the test harness: what cano costs an application.
smoke lm3s6965evb cortex-m3 thumbv7m-none-eabi --example footprint
smoke mps2-an386 cortex-m4 thumbv7em-none-eabihf --features mps2 --example footprint
# The footprint again with cano's defmt logs, every level kept (DEFMT_LOG=trace), into a RAM
# ring logger: the flash difference to the line above is what defmt logging costs.
DEFMT_LOG=trace smoke lm3s6965evb cortex-m3 thumbv7m-none-eabi --features defmt --example footprint
DEFMT_LOG=trace smoke mps2-an386 cortex-m4 thumbv7em-none-eabihf --features mps2,defmt --example footprint
# `footprint` joins no fleet and has no checkpoint store or compensatable task; nothing in
# cano parses a timestamp with jiff's general parser, prints a u128 or a Duration's Debug.
unlinked thumbv7m-none-eabi 'SchedulerCore>?::fleet_(start|poll|due|run_ended)\b' \
  'Workflow<S,K>>::(run_ledgered|open_ledger|settle)\b' 'as cano_core::scheduler::job::RecoverableJob>' \
  'jiff::fmt::(rfc9557|temporal)::' '<u128>::_fmt' 'Duration as core::fmt::Debug' \
  -- --example footprint

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
