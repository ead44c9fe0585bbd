"""Multicast between hosts where no Transit Gateway domain reaches: a VXLAN overlay with head-end
replication (``mcastkit overlay``). :mod:`.device` brings a host's part up and down, :mod:`.status`
reads it back, :mod:`.unit` makes it persistent, :mod:`.system` runs the host's commands."""
