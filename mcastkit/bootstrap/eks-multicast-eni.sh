#!/usr/bin/env bash
# mcastkit: attach an EKS node's multicast ENI, give it a fixed name, mcast0, and keep the node's own
# network configuration off it. Pods get the ENI through Multus and the host-device CNI plugin,
# which selects it by that name (the AMI would call it eth1 or ens6, by instance type); the ENI is
# found by its device index in the instance metadata (IMDSv2), never by a guessed name.
#
# The node creates and attaches the ENI itself: EC2 Auto Scaling puts every interface of a launch
# template in the instance's own subnet (Auto Scaling user guide, "Network interfaces in a VPC"),
# and the multicast ENI belongs in the domain's multicast subnet. It is created with the
# node.k8s.amazonaws.com/no_manage tag, so the VPC CNI never sees it untagged, attached at device
# index 1 and deleted with the instance. The calls are the VPC CNI's own (the node role holds them
# for it); this runs before nodeadm starts the kubelet, so before the VPC CNI. If the ENI is already
# there (a reboot), nothing is created.
#
# Kept off the node's own network configuration (no DHCP address, no policy routes: the address is
# the pod's). Before the ENI is attached: a .link file names it mcast0 when udev sees it, a .network
# file marks it unmanaged for networkd (matched by MAC, sorting before nodeadm's 70-eks-* files:
# networkd uses the first match), and nodeadm's per-instance cache of interface managers records it
# as the CNI's, so nodeadm's udev rule configures nothing and its boot hook expects it unmanaged at
# every later boot (nodeadm-internal udev and boot-hook, /etc/eks/nodeadm/udev-net-manager). On
# success, a nodeadm drop-in gives the node the multicast label, which the multicast pods and Multus
# select: a node whose ENI failed joins without it, and no multicast pod is placed there.
#
# Set by the launch template's user data: MCASTKIT_ENI_SUBNET, MCASTKIT_ENI_SECURITY_GROUP (the
# domain's members group), MCASTKIT_CLUSTER, MCASTKIT_NODE_LABEL. Overridable for tests:
# MCASTKIT_IMDS_ENDPOINT, MCASTKIT_SYSFS_NET, MCASTKIT_NETWORKD_DIR, MCASTKIT_NODEADM_DIR (default
# /etc/eks), MCASTKIT_DEVICE_NUMBER (default 1), MCASTKIT_ENI_NAME (default mcast0),
# MCASTKIT_WAIT_SECONDS, and AWS_ENDPOINT_URL (the AWS CLI reads it).
set -euo pipefail

imds="${MCASTKIT_IMDS_ENDPOINT:-http://169.254.169.254}"
sysfs="${MCASTKIT_SYSFS_NET:-/sys/class/net}"
networkd="${MCASTKIT_NETWORKD_DIR:-/etc/systemd/network}"
nodeadm="${MCASTKIT_NODEADM_DIR:-/etc/eks}"
device_number="${MCASTKIT_DEVICE_NUMBER:-1}"
name="${MCASTKIT_ENI_NAME:-mcast0}"
wait_seconds="${MCASTKIT_WAIT_SECONDS:-120}"
# The AWS CLI retries throttling and server errors itself, this many times.
export AWS_RETRY_MODE="${AWS_RETRY_MODE:-standard}" AWS_MAX_ATTEMPTS="${AWS_MAX_ATTEMPTS:-8}"

fail() {
  echo "mcastkit eks-multicast-eni: $*" >&2
  exit 1
}

metadata() {
  local token
  token=$(curl -sf --retry 3 -X PUT "$imds/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 60") \
    || return 1
  curl -sf --retry 3 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/$1"
}

eni_mac() {
  local entry mac
  for entry in $(metadata network/interfaces/macs/); do
    mac="${entry%/}"
    if [ "$(metadata "network/interfaces/macs/$mac/device-number")" = "$device_number" ]; then
      echo "$mac"
      return 0
    fi
  done
  return 1
}

interface_with() {
  local path
  for path in "$sysfs"/*; do
    if [ "$(tr '[:upper:]' '[:lower:]' < "$path/address" 2>/dev/null)" = "$1" ]; then
      basename "$path"
      return 0
    fi
  done
  return 1
}

keep_off() {
  local mac="$1"
  mkdir -p "$networkd"
  cat > "$networkd/05-mcastkit-multicast-eni.network" <<NETWORK
# mcastkit: the multicast ENI belongs to a pod (Multus host-device); the node leaves it alone.
[Match]
MACAddress=$mac

[Link]
Unmanaged=yes
NETWORK
  cat > "$networkd/05-mcastkit-multicast-eni.link" <<LINK
# mcastkit: the multicast ENI's name, which the pods' NetworkAttachmentDefinition selects.
[Match]
MACAddress=$mac

[Link]
Name=$name
LINK
  if [ -d "$nodeadm/nodeadm" ]; then
    mkdir -p "$nodeadm/nodeadm/udev-net-manager/$instance"
    echo cni > "$nodeadm/nodeadm/udev-net-manager/$instance/$name"
  fi
  if [ -z "${MCASTKIT_NETWORKD_DIR:-}" ]; then
    udevadm control --reload || true
    networkctl reload || true
  fi
}

attach_eni() {
  local region created eni attachment
  : "${MCASTKIT_ENI_SUBNET:?the multicast subnet to create the ENI in}"
  : "${MCASTKIT_ENI_SECURITY_GROUP:?the security group of the ENI}"
  region=$(metadata placement/region) || fail "no region in the instance metadata at $imds"
  # The client token makes a retried create return the same ENI, never a second one.
  created=$(aws ec2 create-network-interface --region "$region" --subnet-id "$MCASTKIT_ENI_SUBNET" \
    --groups "$MCASTKIT_ENI_SECURITY_GROUP" --description "mcastkit multicast ENI of $instance" \
    --client-token "mcastkit-$instance-$device_number" \
    --tag-specifications "ResourceType=network-interface,Tags=[{Key=node.k8s.amazonaws.com/no_manage,Value=true},{Key=mcastkit:cluster,Value=${MCASTKIT_CLUSTER:-}},{Key=mcastkit:instance,Value=$instance}]" \
    --query 'NetworkInterface.[NetworkInterfaceId,MacAddress]' --output text) \
    || fail "could not create the multicast ENI in $MCASTKIT_ENI_SUBNET"
  read -r eni mac <<< "$created"
  keep_off "$mac"
  if ! attachment=$(aws ec2 attach-network-interface --region "$region" --network-interface-id "$eni" \
    --instance-id "$instance" --device-index "$device_number" --query AttachmentId --output text); then
    aws ec2 delete-network-interface --region "$region" --network-interface-id "$eni" || true
    fail "could not attach $eni to $instance at device index $device_number (deleted it)"
  fi
  # EC2 attaches without DeleteOnTermination: an instance terminated before this call leaves the
  # ENI behind (tagged mcastkit:instance).
  aws ec2 modify-network-interface-attribute --region "$region" --network-interface-id "$eni" \
    --attachment "AttachmentId=$attachment,DeleteOnTermination=true" \
    || fail "could not set $eni to be deleted with $instance"
  echo "mcastkit: created $eni in $MCASTKIT_ENI_SUBNET and attached it to $instance at device index $device_number"
}

instance=$(metadata instance-id) || fail "no instance id in the instance metadata at $imds"
if mac=$(eni_mac); then
  keep_off "$mac"
else
  attach_eni
fi

# Give udev time to show the attached ENI.
interface=""
for _ in $(seq 1 "$wait_seconds"); do
  interface=$(interface_with "$mac" || true)
  [ -n "$interface" ] && break
  sleep 1
done
[ -n "$interface" ] || fail "the ENI $mac (device number $device_number) has no interface in $sysfs after ${wait_seconds} s"

# udev named it already where the .link file was in place before it appeared.
if [ "$interface" != "$name" ]; then
  ip link set dev "$interface" down
  ip link set dev "$interface" name "$name"
fi
ip address flush dev "$name"
ip link set dev "$name" up

if [ -n "${MCASTKIT_NODE_LABEL:-}" ]; then
  mkdir -p "$nodeadm/nodeadm.d"
  cat > "$nodeadm/nodeadm.d/50-mcastkit-multicast-eni.yaml" <<DROPIN
# mcastkit: this node holds its multicast ENI; nodeadm-run merges this over the user data.
apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    flags:
      - --node-labels=$MCASTKIT_NODE_LABEL
DROPIN
fi
echo "mcastkit: ENI $mac (device number $device_number) is $name (was $interface), unmanaged by the node"
