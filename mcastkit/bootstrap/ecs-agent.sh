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
#   ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM=ec2_instance
#                                     container instances carry the host's tags
#   ECS_ENABLE_SPOT_INSTANCE_DRAINING=true
#                                     drain tasks when a Spot host is reclaimed
#
# Environment:
#   MCASTKIT_ECS_CONFIG  the agent config file (default /etc/ecs/ecs.config)
set -euo pipefail

config=${MCASTKIT_ECS_CONFIG:-/etc/ecs/ecs.config}

settings=(
  "ECS_AWSVPC_BLOCK_IMDS=true"
  "ECS_ENABLE_TASK_IAM_ROLE=true"
  "ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM=ec2_instance"
  "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true"
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
