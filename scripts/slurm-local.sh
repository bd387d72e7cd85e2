#!/usr/bin/env bash
# A throwaway one-node Slurm cluster on THIS machine, for trying labdeck's Slurm path locally.
#
#   scripts/slurm-local.sh [start]   install slurm+munge if missing, write the config, start
#                                    munged/slurmctld/slurmd, wait until the node is idle
#   scripts/slurm-local.sh stop      stop slurmd, slurmctld and munged
#   scripts/slurm-local.sh status    show the daemons and sinfo
#
# Run as root on Debian/Ubuntu. Idempotent: a second start with everything up is a fast no-op.
# No systemd needed (daemons are started directly), no cgroups needed (proctrack/linuxproc,
# task/none), no database (no accounting storage: `sacct` has no data; finished jobs are
# written one line each to $JOBCOMP by jobcomp/filetxt, and stay in `scontrol show job`
# for MinJobAge seconds).
#
# Environment: SLURM_LOCAL_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
JOBCOMP="$LOG_DIR/jobcomp.log"
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_KEY=/etc/munge/munge.key
MARK="# written by labdeck scripts/slurm-local.sh"
TIMEOUT="${SLURM_LOCAL_TIMEOUT:-60}"

step() { echo "slurm-local: $*"; }
die() { echo "slurm-local: ERROR: $*" >&2; exit 1; }

running() { # pidfile -> is that process alive?
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}
munge_ok() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
node_state() { sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -1; }
node_ready() { case "$(node_state)" in idle|mixed|allocated|completing) return 0;; *) return 1;; esac; }

show_logs() {
  for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] && { echo "----- tail $f" >&2; tail -n 30 "$f" >&2; }
  done
  echo "----- sinfo -N -l" >&2; sinfo -N -l >&2 2>&1 || true
  echo "----- scontrol show node" >&2; scontrol show node >&2 2>&1 || true
}

stop_pid() { # name pidfile
  local pid
  if running "$2"; then
    pid="$(cat "$2")"
    step "stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      step "$1 did not stop, killing it"; kill -9 "$pid" 2>/dev/null || true
    fi
  else
    step "$1 not running"
  fi
  rm -f "$2"
}

do_stop() {
  stop_pid slurmd "$SLURMD_PID"
  stop_pid slurmctld "$CTLD_PID"
  stop_pid munged /run/munge/munged.pid
}

do_status() {
  for d in "munged:/run/munge/munged.pid" "slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID"; do
    if running "${d#*:}"; then echo "${d%%:*}: running (pid $(cat "${d#*:}"))"; else echo "${d%%:*}: stopped"; fi
  done
  if command -v sinfo >/dev/null; then sinfo 2>&1 || true; fi
}

install_packages() {
  local missing=() p
  for p in munge slurmctld slurmd slurm-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then step "packages present (slurm $(slurmd -V 2>/dev/null | awk '{print $2}'))"; return; fi
  command -v apt-get >/dev/null || die "no apt-get: install ${missing[*]} by hand"
  # keep the packages' own init scripts from starting the daemons (there is no config yet)
  local policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; policy_added=1
  fi
  local t0=$SECONDS rc=0
  step "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/slurm-local-apt.log 2>&1; then
    step "install failed, running apt-get update and retrying"
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
      >>/tmp/slurm-local-apt.log 2>&1 || rc=$?
  fi
  [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ "$rc" != 0 ]; then tail -n 30 /tmp/slurm-local-apt.log >&2; die "apt-get install failed (log: /tmp/slurm-local-apt.log)"; fi
  step "installed in $((SECONDS - t0))s (slurm $(slurmd -V | awk '{print $2}'))"
}

setup_munge() {
  id munge >/dev/null 2>&1 || die "user munge missing (munge package not configured?)"
  if [ ! -s "$MUNGE_KEY" ]; then
    step "creating munge key $MUNGE_KEY"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then mungekey --create --keyfile="$MUNGE_KEY" --force
    else dd if=/dev/urandom bs=1 count=1024 of="$MUNGE_KEY" status=none; fi
  fi
  chown munge:munge /etc/munge "$MUNGE_KEY"; chmod 700 /etc/munge; chmod 400 "$MUNGE_KEY"
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge; chmod 755 /run/munge
  if munge_ok; then step "munged running"; return; fi
  step "starting munged"
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged || die "munged failed to start (see /var/log/munge/munged.log)"
  for _ in $(seq 50); do munge_ok && return; sleep 0.1; done
  show_logs; die "munged started but munge -n | unmunge fails"
}

slurm_user() { if id slurm >/dev/null 2>&1; then echo slurm; else echo root; fi; }

# the config for this machine, from slurmd -C (what slurmd itself will report)
render_conf() {
  local node user
  node="$(slurmd -C | grep '^NodeName=' | sed -e 's/ UpTime=.*//' -e "s/^NodeName=[^ ]*/NodeName=$HOST/")"
  [ -n "$node" ] || die "slurmd -C printed no NodeName line"
  user="$(slurm_user)"
  cat <<EOF
$MARK
# one-node throwaway cluster for $HOST; regenerated on every start, edits are overwritten
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no systemd, no cgroups: track processes through /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: sacct has no data; finished jobs go one line each to JobCompLoc
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
SchedulerType=sched/backfill
SelectType=select/cons_tres
# cores are consumable, memory is not (else a job without --mem takes the whole node's memory)
SelectTypeParameters=CR_Core
ReturnToService=2
# refuse at submit a job this node can never run (else it pends forever, Reason=PartitionConfig)
EnforcePartLimits=ALL
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# end jobs promptly: SIGTERM at the time limit, SIGKILL KillWait seconds later
KillWait=5
OverTimeLimit=0
# keep finished jobs in scontrol show job / squeue -t all for 10 minutes
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

do_start() {
  [ "$(id -u)" = 0 ] || die "run as root"
  HOST="$(hostname -s)"
  install_packages
  setup_munge

  local user new changed=0
  user="$(slurm_user)"
  new="$(render_conf)"
  if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new" ]; then
    step "config $CONF unchanged"
  else
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
      step "backing up foreign $CONF to $CONF.bak.$(date +%s)"; cp "$CONF" "$CONF.bak.$(date +%s)"
    fi
    step "writing $CONF ($(grep -o 'CPUs=[0-9]*' <<<"$new") $(grep -o 'RealMemory=[0-9]*' <<<"$new"))"
    mkdir -p "$CONF_DIR"; printf '%s\n' "$new" >"$CONF"; chmod 644 "$CONF"; changed=1
  fi
  mkdir -p "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR"
  chown "$user:" "$STATE_DIR" "$LOG_DIR"; chmod 755 "$STATE_DIR" "$LOG_DIR"
  chown root: "$SPOOL_DIR"; chmod 755 "$SPOOL_DIR"
  touch "$JOBCOMP"; chown "$user:" "$JOBCOMP"

  if [ "$changed" = 1 ] && { running "$CTLD_PID" || running "$SLURMD_PID"; }; then
    step "config changed: restarting the slurm daemons"
    stop_pid slurmd "$SLURMD_PID"; stop_pid slurmctld "$CTLD_PID"
  fi
  if running "$CTLD_PID" && running "$SLURMD_PID" && node_ready; then
    step "slurmctld and slurmd running, node $HOST $(node_state): nothing to do"; return
  fi

  local d pids
  for d in slurmctld:"$CTLD_PID" slurmd:"$SLURMD_PID"; do # one we did not start (systemd, other config)?
    running "${d#*:}" && continue
    pids="$(pgrep -x "${d%%:*}" || true)"
    [ -z "$pids" ] || die "${d%%:*} already running (pid $pids) but not from ${d#*:}; stop it first (e.g. systemctl stop ${d%%:*})"
  done

  local t0=$SECONDS
  if running "$CTLD_PID"; then step "slurmctld running"; else
    step "starting slurmctld"; slurmctld -f "$CONF" || { show_logs; die "slurmctld failed to start"; }
  fi
  if running "$SLURMD_PID"; then step "slurmd running"; else
    step "starting slurmd"; slurmd -f "$CONF" || { show_logs; die "slurmd failed to start"; }
  fi
  step "waiting up to ${TIMEOUT}s for node $HOST to be idle"
  local st=""
  while [ $((SECONDS - t0)) -lt "$TIMEOUT" ]; do
    st="$(node_state)"
    case "$st" in
      idle|mixed|allocated|completing) step "node $HOST $st after $((SECONDS - t0))s; partition debug ready"; return;;
      down*|drain*|fail*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true;;
    esac
    running "$CTLD_PID" || { show_logs; die "slurmctld exited"; }
    running "$SLURMD_PID" || { show_logs; die "slurmd exited"; }
    sleep 0.5
  done
  show_logs; die "node $HOST not idle after ${TIMEOUT}s (state: ${st:-none})"
}

case "${1:-start}" in
  start) do_start;;
  stop) do_stop;;
  status) do_status;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2;;
esac
