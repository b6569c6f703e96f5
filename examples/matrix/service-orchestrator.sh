#!/bin/bash
# The seed's Task 4, step by step, with conductor: two services in two containers; only the
# external one is reachable from other hosts (host port 3000), the counter only from the host.
#
# Environment (all optional): CONDUCTOR (the binary), HOST_IP (this host's address on its LAN;
# default: the source address of the default route), IMAGE, C1, C2 (names).
set -euo pipefail
cd "$(dirname "$0")"

CONDUCTOR=${CONDUCTOR:-conductor}
IMAGE=${IMAGE:-mydebian}
C1=${C1:-c1}
C2=${C2:-c2}
if [ -z "${HOST_IP:-}" ]; then
    HOST_IP=$(ip -4 route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')
fi
step() { echo "== $*"; }

step "1. build the image $IMAGE (debootstrap minbase + python3; cached after the first time)"
if ! $CONDUCTOR images | grep -q "^$IMAGE "; then
    $CONDUCTOR build "$IMAGE" --variant minbase --include procps,iproute2,python3
fi

step "2. run $C1 and $C2 in the background"
$CONDUCTOR run -d "$IMAGE" "$C1" -- sleep infinity
$CONDUCTOR run -d "$IMAGE" "$C2" -- sleep infinity

step "3. copy the services in"
$CONDUCTOR cp external-service "$C1:/external-service"
$CONDUCTOR cp counter-service "$C2:/counter-service"

step "4. network: $C1 with internet and 8080 -> host 3000, $C2 with internet, peered"
$CONDUCTOR addnetwork "$C1" -i -e 8080-3000
$CONDUCTOR addnetwork "$C2" -i
$CONDUCTOR peer "$C1" "$C2"

step "5. the address of $C2"
C2_IP=$($CONDUCTOR inspect --format '{{.Network.allocation.container_ip}}' "$C2")
echo "$C2 is at $C2_IP"

step "6. start the counter service in $C2"
# Its output goes to a log in the container: the exec'd program must not hold our stdout.
$CONDUCTOR exec -d "$C2" -- bash -c 'bash /counter-service/run.sh >/var/log/counter-service.log 2>&1'

step "7. start the external service in $C1"
$CONDUCTOR exec -d "$C1" -- bash -c \
    "bash /external-service/run.sh http://$C2_IP:8080/ >/var/log/external-service.log 2>&1"

step "8. from this host: http://$HOST_IP:3000"
fetch() { curl -fsS --max-time 3 "$1" 2>/dev/null || wget -qO- -T 3 "$1" 2>/dev/null; }
for _ in $(seq 50); do
    if out=$(fetch "http://$HOST_IP:3000/"); then
        echo "$out"
        break
    fi
    sleep 0.2
done
[ -n "${out:-}" ] || { echo "no answer from http://$HOST_IP:3000/" >&2; exit 1; }
fetch "http://$HOST_IP:3000/"

step "9. from any other host that reaches this one"
echo "    curl http://$HOST_IP:3000/"
echo "(the counter service at $C2_IP:8080 answers only on this host)"
echo "clean up with: $CONDUCTOR stop $C1; $CONDUCTOR stop $C2"
