"""Probe streams that prove multicast delivery: paced sender, counting receiver, echo and RTT.

A probe datagram carries a stream id, a sequence number and the send time (``CLOCK_REALTIME``
in ns), so one receiver can count loss, duplicates and reordering, and measure one-way latency
when sender and receiver share a clock (one host, or synchronized hosts).
"""
