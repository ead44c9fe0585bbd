"""A fake EC2 instance for the EKS node's boot script, run inside a network namespace.

``python tests/fake_ec2_node.py IMDS_PORT EC2_PORT`` starts moto's EC2 on ``EC2_PORT``, makes a VPC,
a multicast subnet, a security group and one running instance in it, and serves IMDSv2 on
``IMDS_PORT`` for that instance, its network interfaces read from moto (so an ENI the script
attaches appears in the metadata, as on EC2). A hot-plug thread plays the hypervisor: an ENI
attached at device index 1 or more appears as a network device with the ENI's MAC, with an address
(as networkd's DHCP would give it). It prints one JSON line (the ids) and ``ready``; on each stdin
line it prints the instance's ENIs as JSON; it exits at end of input.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

import boto3
from cni_support import imds_handler  # this script's directory is on sys.path
from moto.server import ThreadedMotoServer

REGION = "eu-west-2"
ZONE = "eu-west-2a"


def main() -> None:
    imds_port, ec2_port = int(sys.argv[1]), int(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=ec2_port, verbose=False)
    moto.start()
    ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{ec2_port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    nodes = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.50.0/24", AvailabilityZone=ZONE)["Subnet"][
        "SubnetId"
    ]
    multicast = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/24", AvailabilityZone=ZONE)["Subnet"][
        "SubnetId"
    ]
    group = ec2.create_security_group(GroupName="members", Description="members", VpcId=vpc)["GroupId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=nodes)["Instances"][
        0
    ]["InstanceId"]

    def enis() -> list[dict[str, Any]]:
        found = ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]
        )["NetworkInterfaces"]
        return list(found)

    def metadata(path: str) -> str | None:
        if path == "instance-id":
            return instance
        if path == "placement/region":
            return REGION
        macs = {eni["MacAddress"]: eni for eni in enis()}
        prefix = "network/interfaces/macs/"
        if path == prefix:
            return "\n".join(f"{mac}/" for mac in macs)
        parts = path.removeprefix(prefix).split("/")
        if path.startswith(prefix) and len(parts) == 2 and parts[0] in macs:
            eni = macs[parts[0]]
            return {
                "device-number": str(eni["Attachment"]["DeviceIndex"]),
                "local-ipv4s": eni["PrivateIpAddress"],
                "subnet-ipv4-cidr-block": "10.20.0.0/24",
            }.get(parts[1])
        return None

    imds = ThreadingHTTPServer(("127.0.0.1", imds_port), imds_handler(metadata))
    threading.Thread(target=imds.serve_forever, daemon=True).start()

    def hot_plug() -> None:
        plugged: set[str] = set()
        while True:
            for index, eni in enumerate(e for e in enis() if e["Attachment"]["DeviceIndex"] >= 1):
                mac = eni["MacAddress"]
                if mac in plugged:
                    continue
                name = f"ens{6 + index}"
                for command in (
                    ["ip", "link", "add", name, "address", mac, "type", "veth", "peer", "name", f"{name}p"],
                    ["ip", "address", "add", f"{eni['PrivateIpAddress']}/24", "dev", name],
                    ["ip", "link", "set", name, "up"],
                ):
                    subprocess.run(command, check=True)
                plugged.add(mac)
            time.sleep(0.1)

    threading.Thread(target=hot_plug, daemon=True).start()
    print(json.dumps({"instance": instance, "subnet": multicast, "security_group": group}), flush=True)
    print("ready", flush=True)
    for _line in sys.stdin:
        print(json.dumps(enis(), default=str), flush=True)
    moto.stop()


if __name__ == "__main__":
    main()
