"""Socket plumbing shared by the relay, the probe and the lab (Linux).

- :mod:`mcastkit.net.addresses`: ``GROUP:PORT``, ``HOST:PORT`` and ``--interface`` parsing;
- :mod:`mcastkit.net.sockets`: multicast sender/receiver setup, buffers, TCP options;
- :mod:`mcastkit.net.limits`: what the Transit Gateway carries (MTU, largest datagram);
- :mod:`mcastkit.net.mmsg`: ``sendmmsg``/``recvmmsg`` batches (with UDP GSO runs) through ctypes.
- :mod:`mcastkit.net.frames`: the IPv4, UDP and IGMP fields of captured packets (lab sniffer, doctor).
"""
