#!/usr/bin/env bash
# Let the tasks on this host have large socket buffers: they run without root, so a socket
# asking for more than net.core.rmem_max (208 KiB by default) gets rmem_max, which holds a
# few milliseconds of a busy feed. A sequencer or relay that is scheduled away, or waits on
# its journal's storage, for longer than its buffer holds loses datagrams.
#
# Raises net.core.rmem_max and net.core.wmem_max (never lowers them) now, and persists them.
#
# Environment:
#   MCASTKIT_SOCKET_BUFFER_BYTES  the ceiling (default 67108864: 64 MiB)
#   MCASTKIT_SYSCTL_CONF          where to persist (default /etc/sysctl.d/90-mcastkit-socket-buffers.conf);
#                                 set it to "" to apply without persisting (tests)
#   MCASTKIT_PROC_CORE            the sysctl tree to write (default /proc/sys/net/core)
set -euo pipefail

want=${MCASTKIT_SOCKET_BUFFER_BYTES:-67108864}
conf_file=${MCASTKIT_SYSCTL_CONF-/etc/sysctl.d/90-mcastkit-socket-buffers.conf}
proc_core=${MCASTKIT_PROC_CORE:-/proc/sys/net/core}

if [[ ! "$want" =~ ^[0-9]+$ ]]; then
  echo "socket-buffers: MCASTKIT_SOCKET_BUFFER_BYTES=$want is not a number of bytes" >&2
  exit 1
fi
for name in rmem_max wmem_max; do
  if [[ ! -w "$proc_core/$name" ]]; then
    echo "socket-buffers: $proc_core/$name is not writable: run as root on Linux" >&2
    exit 1
  fi
  now=$(cat "$proc_core/$name")
  if (( now < want )); then
    echo "$want" > "$proc_core/$name"
  fi
done

if [[ -n "$conf_file" ]]; then
  mkdir -p "$(dirname "$conf_file")"
  cat > "$conf_file" <<CONF
# Written by mcastkit bootstrap/socket-buffers.sh: tasks without root get at most these.
net.core.rmem_max = $(cat "$proc_core/rmem_max")
net.core.wmem_max = $(cat "$proc_core/wmem_max")
CONF
fi

echo "socket-buffers: rmem_max=$(cat "$proc_core/rmem_max") wmem_max=$(cat "$proc_core/wmem_max")${conf_file:+, persisted in $conf_file}"
