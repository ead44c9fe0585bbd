#!/usr/bin/env bash
# Force IGMPv2 on this host: the Transit Gateway understands only IGMPv2, and EC2 Linux
# defaults to IGMPv3, whose joins the TGW ignores.
#
# Sets net.ipv4.conf.{all,default,<every existing interface>}.force_igmp_version=2 now,
# and persists the all/default values so a reboot keeps them. Interfaces created later
# (ECS awsvpc task ENIs, veth pairs, new network namespaces) inherit "default".
#
# Environment:
#   MCASTKIT_SYSCTL_CONF  where to persist (default /etc/sysctl.d/90-mcastkit-igmpv2.conf);
#                         set it to "" to apply without persisting (labs, tests)
#   MCASTKIT_PROC_CONF    the sysctl tree to write (default /proc/sys/net/ipv4/conf)
set -euo pipefail

conf_file=${MCASTKIT_SYSCTL_CONF-/etc/sysctl.d/90-mcastkit-igmpv2.conf}
proc_conf=${MCASTKIT_PROC_CONF:-/proc/sys/net/ipv4/conf}

if [[ ! -d "$proc_conf" ]]; then
  echo "igmpv2: $proc_conf not found: is this Linux with IPv4?" >&2
  exit 1
fi

# "all" and "default" first, so an interface that appears while we loop inherits v2.
for name in all default; do
  echo 2 > "$proc_conf/$name/force_igmp_version"
done
for dir in "$proc_conf"/*/; do
  # An interface may vanish between the glob and the write; that is not an error.
  if [[ -w "$dir/force_igmp_version" ]]; then
    echo 2 > "$dir/force_igmp_version" 2>/dev/null || true
  fi
done

if [[ -n "$conf_file" ]]; then
  mkdir -p "$(dirname "$conf_file")"
  cat > "$conf_file" <<CONF
# Written by mcastkit bootstrap/igmpv2.sh: the AWS Transit Gateway supports IGMPv2 only.
net.ipv4.conf.all.force_igmp_version = 2
net.ipv4.conf.default.force_igmp_version = 2
CONF
fi

forced=$(grep -l '^2$' "$proc_conf"/*/force_igmp_version | wc -l)
echo "igmpv2: force_igmp_version=2 on $forced entries of $proc_conf${conf_file:+, persisted in $conf_file}"
