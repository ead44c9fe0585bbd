"""The doctor's AWS checks (``--aws``): what the Transit Gateway and the VPC's firewalls do with the
ENI behind the multicast interface. boto3 through :class:`mcastkit.onboard.aws.Aws`, whose calls
turn every botocore failure into one line naming the call.

- :mod:`~mcastkit.doctor.aws.imds` and :mod:`~mcastkit.doctor.aws.interface`: which ENI;
- :mod:`~mcastkit.doctor.aws.domain`: its subnet's domain, the domain's options, the association;
- :mod:`~mcastkit.doctor.aws.groups`: the ENI's membership and the sources of each group;
- :mod:`~mcastkit.doctor.aws.flows`: the packets a member needs through its firewalls;
- :mod:`~mcastkit.doctor.aws.security_groups`, :mod:`~mcastkit.doctor.aws.network_acl`: whether they pass;
- :mod:`~mcastkit.doctor.aws.checks`: all of it, in order.
"""
