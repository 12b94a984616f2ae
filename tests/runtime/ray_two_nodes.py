"""A two-node Ray cluster on this machine, every node on 127.0.0.1, for test_multinode.py.

Run as a script: ``python ray_two_nodes.py PORT``. It prints ``ready ADDRESS NODE_ID NODE_ID``
once both nodes are up and shuts the cluster down on SIGTERM. Token authentication is on
(RAY_AUTH_MODE and the token come from the environment).

Why not ``ray start``: on Linux, ``ray start --address 127.0.0.1:PORT`` replaces the loopback
address (and ``--node-ip-address 127.0.0.1``) by the machine's routable address, so a second
node started that way leaves loopback, and fails wherever that address is not reachable.
``ray.cluster_utils.Cluster`` starts the same processes (GCS, raylets, workers) with the node
IP address as given.
"""
import signal
import sys
import time

from ray.cluster_utils import Cluster


def main(port: int) -> None:
    node = dict(node_ip_address="127.0.0.1", num_cpus=1, object_store_memory=80 * 2**20)
    cluster = Cluster(initialize_head=True, head_node_args=dict(gcs_server_port=port, include_dashboard=False, **node))
    second = cluster.add_node(**node)

    def stop(*_):
        cluster.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", cluster.address, cluster.head_node.node_id, second.node_id, flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(int(sys.argv[1]))
