"""Sequenced, recoverable streams: the pattern trading venues run their buses on.

A sequencer (:mod:`~mcastkit.stream.sequencer`) gives every datagram of its input groups the
next 64-bit sequence number, appends it to a journal (:mod:`~mcastkit.stream.journal`) and
only then publishes it as MoldUDP64 (:mod:`~mcastkit.stream.mold`) on a group of its own.
Receivers (:mod:`~mcastkit.stream.subscriber`) deliver in order, exactly once, and fill gaps
by MoldUDP64 re-request (:mod:`~mcastkit.stream.retransmit`, unicast inside the provider's
VPC) or by SoupBinTCP replay (:mod:`~mcastkit.stream.replay`, what a customer reaches through
PrivateLink). Nothing here imports the CDK or boto3; this ``__init__`` imports nothing, so the
config core can use :mod:`~mcastkit.stream.fsync`.
"""
