# The rig's node: makes its namespaces, then cleans up after it when the rig's process ends.
#
#   sh -c "$(cat janitor.sh)" janitor DIR CGROUP HOST_IF HOST_CIDR NODE_CIDR POD_CIDR
#
# 1. A network namespace with nothing routed out of it (a veth pair to the host: HOST_CIDR
#    on the host's end, NODE_CIDR on the node's `eth0`, no default route; the host routes
#    POD_CIDR to the node, so tests reach pods as a cluster's nodes do) and a private
#    mount namespace, so what the node mounts (pods' volumes and root filesystems, the
#    pods' network namespace files, logs) is never seen by the host and goes with it. A
#    holder process keeps both alive; every process of the node joins them (nsenter).
#    /var/log and /run/netns are fresh tmpfs in there.
# 2. Prints the holder's pid, then waits on its stdin: the rig's lifeline. It closes when
#    the rig drops the node or its process dies, even on SIGKILL.
# 3. Then kills every process of the node: those in its network namespace (containerd,
#    its shims, kubelet, kube-proxy) and those in its cgroups (the containers); the
#    namespaces go with the last of them (and the veth pair with the network namespace).
#    Removes the node's cgroups and DIR.
set -u
trap '' INT TERM HUP
dir=$1 cgroup=$2 host_if=$3 host_cidr=$4 node_cidr=$5 pod_cidr=$6
exec 3<&0 0</dev/null

mkdir -p /run/netns
unshare --net --mount --propagation private \
  sh -c 'mount -t tmpfs -o mode=0755 tmpfs /var/log && mount -t tmpfs -o mode=0755 tmpfs /run/netns && exec sleep infinity' &
holder=$!
ours=$(readlink /proc/self/ns/net)
while [ "$(readlink "/proc/$holder/ns/net" 2>/dev/null || echo "$ours")" = "$ours" ] \
  || [ "$(cat "/proc/$holder/comm" 2>/dev/null)" != sleep ]; do
  kill -0 "$holder" 2>/dev/null || { echo "the node's namespaces could not be made" >&2; exit 1; }
  sleep 0.05
done
netns=$(readlink "/proc/$holder/ns/net")

ip link add "$host_if" type veth peer name eth0 netns "$holder" \
  && ip addr add "$host_cidr" dev "$host_if" && ip link set "$host_if" up \
  && nsenter --target "$holder" --net sh -c "ip addr add $node_cidr dev eth0 && ip link set eth0 up && ip link set lo up" \
  && ip route add "$pod_cidr" via "${node_cidr%/*}" dev "$host_if" \
  || { kill -9 "$holder"; echo "the node's network could not be made" >&2; exit 1; }
for controller in /sys/fs/cgroup/*/; do
  [ -e "$controller/cgroup.procs" ] && mkdir -p "$controller$cgroup"
done

echo "$holder"
read -r _ <&3

for round in 1 2 3 4 5 6 7 8 9 10; do
  pids=
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$netns" ] && pids="$pids ${p#/proc/}"
  done
  pids="$pids $(find /sys/fs/cgroup/*/"$cgroup" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')"
  [ -z "$(echo $pids)" ] && break
  kill -9 $pids 2>/dev/null
  sleep 0.2
done
find /sys/fs/cgroup/*/"$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
ip link del "$host_if" 2>/dev/null
rm -rf "$dir"
