#!/usr/bin/env bash
# Configure the ECS agent for multicast tasks on this host.
#
# Writes KEY=VALUE settings into the agent's config file, replacing earlier values of the
# same keys (so re-running is harmless) and leaving every other line alone: the
# capacity provider's user data appends ECS_CLUSTER after this script has run.
#
#   ECS_AWSVPC_BLOCK_IMDS=true        awsvpc tasks cannot reach the instance metadata
#                                     service (and so not the host role's credentials)
#   ECS_ENABLE_TASK_IAM_ROLE=true     tasks use their own task roles
#
# Not set, on purpose: ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM=ec2_instance makes the agent
# call EC2 DescribeTags before it registers (amazon-ecs-agent agent/app/agent.go,
# registerContainerInstance) and tag the container instance (ecs:TagResource); the hosts have
# no path to the EC2 API (no NAT, no ec2 endpoint), the agent exits 1 on the failure and ecs-init
# restarts it forever, so no host would ever join the cluster. ECS_ENABLE_SPOT_INSTANCE_DRAINING
# is for Spot capacity, which the cluster does not use.
#
# Environment:
#   MCASTKIT_ECS_CONFIG  the agent config file (default /etc/ecs/ecs.config)
set -euo pipefail

config=${MCASTKIT_ECS_CONFIG:-/etc/ecs/ecs.config}

settings=(
  "ECS_AWSVPC_BLOCK_IMDS=true"
  "ECS_ENABLE_TASK_IAM_ROLE=true"
)

mkdir -p "$(dirname "$config")"
touch "$config"
for setting in "${settings[@]}"; do
  key=${setting%%=*}
  # Drop any earlier value of this key, then append the new one.
  tmp=$(mktemp "$config.XXXXXX")
  grep -v "^${key}=" "$config" > "$tmp" || true
  echo "$setting" >> "$tmp"
  cat "$tmp" > "$config"
  rm -f "$tmp"
done

echo "ecs-agent: ${#settings[@]} settings written to $config"
