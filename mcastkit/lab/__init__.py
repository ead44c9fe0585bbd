"""A multicast lab on one Linux machine: datacenter, Direct Connect link and AWS segment in namespaces.

``mcastkit lab up`` builds it, ``lab run`` pushes a probe stream through it, ``lab down``
removes every namespace, link and process it created. Needs root and iproute2.
"""
