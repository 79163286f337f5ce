#!/usr/bin/env bash
# Proves the README's two commands work on a brand-new Debian 12: builds a minimal bookworm root
# with mmdebstrap, clones a committed revision into it (not the working tree, so nothing uncommitted
# can hide a problem), and runs `./scripts/run.sh && ./scripts/test.sh` in it as root, chrooted,
# timing each. A package that setup.sh forgets fails here even where the machine running this has it.
#   scripts/fresh-check.sh [--rev REV] [--keep]
#     --rev REV  the revision to check (default HEAD; also FRESH_REV)
#     --keep     keep the root afterwards (unmounted) to look inside (also FRESH_KEEP=1)
# Needs root (mmdebstrap, mount, chroot), a Debian mirror, and about 4 GB free under /var/tmp
# (FRESH_TMPDIR to put the root elsewhere). The root is unmounted and removed on exit, failure or
# Ctrl-C. It prints wall and CPU seconds of each command; the README's quick start has figures.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

rev="${FRESH_REV:-HEAD}"
keep="${FRESH_KEEP:-0}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rev) rev="${2:?--rev needs a revision}"; shift 2 ;;
    --rev=*) rev="${1#--rev=}"; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh-check: FAILED: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "fresh-check: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (mmdebstrap, mount and chroot need it); try: sudo $0"
commit=$(git -C "$repo" rev-parse --verify --quiet "$rev^{commit}") || fail "no such revision: $rev"

# mmdebstrap, installed the way setup.sh installs the project's packages.
if ! dpkg-query -W -f='${Status}' mmdebstrap 2>/dev/null | grep -q 'install ok installed'; then
  echo "fresh-check: installing mmdebstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

work=$(mktemp -d "${FRESH_TMPDIR:-/var/tmp}/lenz-fresh.XXXXXX")
chmod 755 "$work"  # apt downloads as _apt, which must reach the root's lists
root="$work/root"
mkdir "$root"
child=""
stage="setup"

# Mount points at or under the root, deepest first (field 5 of mountinfo; our path has no spaces).
mounts_under_root() {
  awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Processes chrooted into the root: ours (the build and the tests), ended before unmounting.
procs_in_root() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
  done
  return 0
}

cleanup() {
  local status=$? pids tries m
  set +e
  trap '' INT TERM
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
  fi
  for tries in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(procs_in_root)
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    if [ "$tries" -lt 10 ]; then kill -TERM $pids 2>/dev/null; else kill -KILL $pids 2>/dev/null; fi
    sleep 1
  done
  [ -n "$child" ] && wait "$child" 2>/dev/null
  for tries in 1 2 3; do
    for m in $(mounts_under_root); do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
    [ -z "$(mounts_under_root)" ] && break
    sleep 1
  done
  if [ -n "$(mounts_under_root)" ]; then
    # Never delete through a mount: /dev or /sys of the machine would go with it.
    echo "fresh-check: could not unmount $(mounts_under_root | tr '\n' ' '); NOT removing $work" >&2
    [ "$status" -eq 0 ] && status=1
  elif [ "$keep" = "1" ]; then
    echo "fresh-check: kept the root in $root (to enter: chroot $root /bin/bash; to remove: rm -rf --one-file-system $work)"
  else
    # --one-file-system: even if a mount appeared since the check, rm does not descend into it.
    rm -rf --one-file-system "$work"
  fi
  if [ "$status" -ne 0 ]; then
    echo "fresh-check: FAILED in $stage (exit status $status)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits for it, so that Ctrl-C or a TERM reach the traps at
# once instead of after a 15-minute build. env restores SIGINT, which bash ignores in background jobs
# and which the tests send to the CLI.
run_waiting() {
  env --default-signal=INT,QUIT "$@" &
  child=$!
  wait "$child"
  local status=$?
  child=""
  return $status
}

# The root: --variant=minbase is Essential + Priority:required + apt, what the debian:bookworm
# container image holds and less than the Debian installer leaves; plus git and ca-certificates,
# which a user needs to have cloned the repository. Nothing the project builds with: that is
# setup.sh's job, and this is what checks it.
# Sources: the machine's own Debian bookworm sources (those signed by the Debian archive keyring),
# so that the root reaches the mirror this machine reaches; mmdebstrap's default mirror otherwise.
mirrors=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  grep -qE '^[^#]*bookworm' "$f" || continue
  other_keys=$(grep -io 'signed-by[:=][[:space:]]*[^] ]*' "$f" | grep -v 'debian-archive-keyring' || true)
  [ -z "$other_keys" ] && mirrors+=("$f")
done
# Options the machine needs to reach its mirror (a proxy; no date checks for a snapshot mirror).
aptopts=()
while IFS= read -r line; do
  aptopts+=("--aptopt=$line")
done < <(apt-config dump | grep -E '^Acquire::((http|https|ftp)::Proxy|Check-Valid-Until|Check-Date)' || true)

stage="mmdebstrap"
echo "fresh-check: building a minimal Debian 12 root in $root (revision ${commit:0:12})"
t0=$(date +%s)
run_waiting mmdebstrap --mode=root --variant=minbase --include=ca-certificates,git \
  ${aptopts[@]+"${aptopts[@]}"} bookworm "$root" ${mirrors[@]+"${mirrors[@]}"}
# Name resolution as on this machine (mmdebstrap copies resolv.conf but not hosts).
cp -L /etc/hosts "$root/etc/hosts"
[ -e /etc/resolv.conf ] && cp -L /etc/resolv.conf "$root/etc/resolv.conf"
t_root=$(($(date +%s) - t0))

stage="git clone"
git clone -q --no-hardlinks "$repo" "$root/root/lenz"
git -C "$root/root/lenz" checkout -q --detach "$commit"

# /proc and /dev/shm fresh; /sys, /dev and /dev/pts bound from this machine, one level each and
# private, so that unmounting them here can never unmount anything of the machine's.
stage="mounting"
mount -t proc proc "$root/proc"
mount --bind /sys "$root/sys" && mount --make-private "$root/sys"
mount --bind /dev "$root/dev" && mount --make-private "$root/dev"
mount --bind /dev/pts "$root/dev/pts" && mount --make-private "$root/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"

# User + system CPU seconds of this shell's finished children (the builds, the tests), into $cpu:
# unlike wall time, not stretched by whatever else the machine runs. `times` in this shell, not a
# subshell, which would have no children.
cpu_now() {
  times >"$work/times"
  cpu=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] }
    printf "%d\n", s }' "$work/times")
}

# As root after a login: a clean environment (no CI, no LENZ_* from the caller), in the clone.
in_root() {
  run_waiting env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    chroot "$root" /bin/bash -c "cd /root/lenz && $1"
}

stage="run.sh"
echo "fresh-check: ./scripts/run.sh"
t0=$(date +%s)
cpu_now; c0=$cpu
in_root ./scripts/run.sh
t_run=$(($(date +%s) - t0))
cpu_now; c_run=$((cpu - c0))

stage="test.sh"
echo "fresh-check: ./scripts/test.sh"
t0=$(date +%s)
cpu_now; c0=$cpu
in_root ./scripts/test.sh
t_test=$(($(date +%s) - t0))
cpu_now; c_test=$((cpu - c0))

stage="cleanup"
echo "fresh-check: revision ${commit:0:12}: root ${t_root} s, run.sh ${t_run} s (CPU ${c_run} s)," \
  "test.sh ${t_test} s (CPU ${c_test} s), passed"
