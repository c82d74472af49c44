#!/bin/sh
# A stand-in for a real deploy tool: it takes a moment and records what it did.
set -eu
action=$1 service=$2 version=$3 environment=$4
mkdir -p deployed
echo "$(date -u +%H:%M:%S) $action $service $version in $environment (key $INTERLOCK_IDEMPOTENCY_KEY)"
sleep 1
if [ "$action" = roll-out ]; then
  echo "$version" > "deployed/$service.$environment"
fi
echo "$action done"
