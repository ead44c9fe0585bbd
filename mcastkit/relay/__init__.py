"""Multicast relay over TCP: ``ingress`` joins groups and streams them, ``egress`` re-emits them.

Direct Connect, VPN and TGW peering do not carry multicast, so the datacenter side (ingress)
joins the groups and forwards every datagram over TCP; the AWS side (egress, an ECS task in
the multicast subnet) re-originates them as multicast into the Transit Gateway domain.
Either side may dial; the dialer reconnects with backoff after any failure.

Frame format (version 3)
------------------------
Every frame is a fixed 32-byte header in network byte order followed by ``length`` bytes::

    offset size field
    0      2    magic      0x4D4B ("MK")
    2      1    version    3
    3      1    type       1 DATA, 2 HEARTBEAT, 3 HELLO, 4 PROOF, 5 BYE, 6 RUN, 7 RESUME, 8 SEAL
    4      4    length     payload bytes that follow the header (at most 65535)
    8      4    group      IPv4 multicast group (DATA, RUN; 0 otherwise)
    12     2    port       UDP destination port (DATA, RUN; 0 otherwise)
    14     2    segment    RUN: the size of each of its datagrams; 0 otherwise, ignored
    16     8    sequence   DATA: per (group, port), starting at 1 for each ingress session;
                           RUN: that of its first datagram (the others follow in turn);
                           HEARTBEAT: heartbeat counter; RESUME: 1 when the egress knows
                           this ingress session, 0 when it starts fresh
    24     8    time_ns    DATA, RUN: ingress receive time (Unix epoch, ns); HEARTBEAT: send time
    32     ...  payload    DATA: the datagram; RUN: its datagrams back to back, each
                           ``segment`` bytes but the last, which may be shorter;
                           HELLO/PROOF: handshake fields (below); RESUME: one 14-byte entry
                           (group 4, port 2, next sequence wanted 8) per stream to resume;
                           SEAL: the 16-byte tag of the write it ends (below)

A RUN carries what the ingress host's NIC coalesced (GRO) and the kernel handed over as one
message (UDP GRO): a burst of equal-size datagrams of one group, 1 to 64 of them. The
egress sends it on as one UDP GSO message. Peers of another version are refused at the handshake.

A reader rejects a frame (and closes that connection) on a wrong magic or version, an unknown
type, a length over 65535, a RUN that is empty, has segment 0 or more than 64 datagrams, or a
handshake frame of the wrong size. A datagram that would not fit the TGW MTU (8500-byte IP
packet, i.e. more than 8472 bytes of UDP payload) is dropped and counted, never emitted: the
ingress drops it before framing, the egress again before sending.

The egress tracks the last sequence number per (ingress session, group, port): a jump forward
adds the missing count to ``gaps``, an old or repeated number adds to ``duplicates`` and is
not emitted; a jump of more than 2**40 is a protocol error (a forged or broken stream).

Resume (nothing lost across a link outage)
------------------------------------------
The ingress keeps the recent stream of all its groups, as the frames it wrote, in a replay
window bounded by bytes and age (``--replay-bytes``, default 256 MiB, counting each batch's
frames and about 73 bytes of bookkeeping; ``--replay-seconds``, default 20): at 100k msg/s of 64
B that is 15 s when every datagram arrives on its own and 20 s in batches of 4 or more. A 10 s
outage needs about 15 s (three heartbeats to notice it, then a redial). Right after the
handshake the egress sends one RESUME frame. When it knows this ingress session (it has had a
link to it before) the frame says so and names, for each stream it has emitted, the next
sequence it needs; the ingress replays those streams from there and every other stream from
where it stood when that egress (its session id) first went live here, so a stream that began
during the outage, or whose first datagrams died with the link, is not skipped. When the egress
holds nothing of the session, its RESUME is a fresh start: its first link since it started (an
egress that restarts starts fresh, and logs so) or a new ingress session (the ingress restarted:
what was in flight then is lost). The ingress sends an egress no DATA or RUN until its RESUME
has arrived (within 5 s, or the link is closed, ``reason="no_resume"``); it then replays from
the window, in the original order, every datagram the egress asked for (a RUN that began earlier
is cut to start at the one wanted), as fast as the egress's socket takes them, and only then
puts the egress on the live stream, so the egress sees every stream continue without a gap or a
repeat. What the window no longer holds is counted in ``unrecoverable{group}`` and logged, and
the egress sees it as a gap. A RESUME naming a stream the ingress does not join, or a sequence
it has not reached, is a protocol error. Replayed datagrams arrive late (by the outage and the
time to notice it: three heartbeats, then the redial), in a burst as fast as the link carries
them.

Authentication (mutual HMAC-SHA256 challenge-response)
------------------------------------------------------
Both sides hold the same secret (``--secret-file`` or ``--secret-env``). On connect:

1. Both sides send HELLO: role (1 byte: 1 ingress, 2 egress), a fresh 32-byte random nonce,
   and a 64-bit session id (random per process; the egress uses the ingress's to tell a
   reconnect from a restart). A peer with the same role as ours is refused.
2. The dialer sends PROOF = HMAC-SHA256(secret, "mcastkit-relay-v1" || role || listener's
   HELLO payload || dialer's HELLO payload), role being the dialer's own: both nonces and
   both session ids are bound, so none can be changed on the path.
3. The listener checks it (constant-time compare). Only then does it send its own PROOF
   (same formula with the roles and HELLOs swapped), so a client that cannot prove the
   secret learns nothing but a random nonce.
4. The dialer checks the listener's PROOF. No DATA or RUN flows in either direction, and the egress
   emits nothing, until both proofs have been verified; the whole exchange must finish in
   5 seconds.

A failed proof closes the connection, is logged with the peer address and counted in
``mcastkit_relay_auth_failures_total``. Role and both nonces are bound into each proof, so a
recorded or reflected proof is useless.

Integrity after the handshake (:mod:`mcastkit.relay.seal`)
-----------------------------------------------------------
Each side derives one key per direction: HMAC-SHA256(secret, "mcastkit-relay-v3 seal" ||
writer's role || writer's HELLO payload || reader's HELLO payload). Every write after the
handshake (a batch of DATA and RUN frames, a HEARTBEAT, the RESUME, BYE) is followed by a SEAL
frame whose 16-byte payload is HMAC-SHA256(key, write counter as 8 bytes || the write's bytes),
cut to 16 bytes; the counter starts at 0 on each link and direction. A reader acts on no frame
until the SEAL after it verifies, so a frame injected, altered, dropped, repeated or reordered
on the path closes the link as a protocol error (the egress emits none of it; the link then
resumes) and nothing recorded on one link verifies on another. The stream is not encrypted
unless asked: with ``--tls-cert``, ``--tls-key`` and ``--tls-ca`` on both sides the link runs in
mutual TLS 1.3 (:mod:`mcastkit.relay.tls`), with the handshake and the seals inside it. Measured
cost (``python bench/seal_bench.py``): seal and check add about 3 µs to a write of one datagram
and 0.13 µs a datagram to writes of 64.

Whoever proves first hands an unauthenticated party one HMAC of the secret over nonces it knows
(here the dialer, to any listener that answers): material for guessing the secret offline. No
order of a mutual challenge-response avoids that for both sides, so the secret is what bounds
it: a secret under 256 bits (estimated from its length and alphabet) is refused at start, which
leaves no feasible search.

Counters (nothing is lost without one)
--------------------------------------
Every datagram the ingress reads is either too large (``drops{reason="oversize"}``) or counted in
``datagrams_in{group}``. Each accepted datagram is then owed once to every live peer (one that
has started fresh or finished its replay: see "Resume") when it arrived, or, when none is, once
to nobody; ``datagrams_due{group}`` counts these copies (with one peer, or none, it equals
``datagrams_in``). Every copy ends in exactly one of:

- ``datagrams_out{group}``: its batch, seal included, was written whole to that peer's TCP socket
  (a batch still in the relay's send queue is not out yet; what the kernel held when a link was
  reset is not seen);
- ``drops{reason="no_peer"}``: no peer was live when it arrived (a peer that is replaying takes
  it later from the window, in ``replayed``);
- ``drops{reason="slow_peer_queue"}``: it was in (or would have overflowed) the queue of a peer
  dropped for falling ``--queue-bytes`` behind (the socket's sending side is shut as the queue
  is counted, so nothing of it leaves afterwards);
- ``drops{reason="link_lost_queue"}``: it was still queued when the link ended for another reason
  (heartbeat timeout, connection reset, drain timeout at stop);
- ``queued_datagrams`` (gauge): still in a peer's send queue, not yet seen on its socket (the
  ingress looks every 50 ms while a queue is not empty).

A peer that resumes is not live until its replay is done: what arrives meanwhile reaches it
through the replay. ``replayed{group}`` counts the datagrams written to it from the window (what
it missed, whether counted above as ``no_peer``, ``link_lost_queue`` or ``datagrams_out`` lost
in the kernel with the connection) and ``unrecoverable{group}`` those it asked for that the
window no longer held; ``resumes`` counts the replays (on the egress: the resumes it asked for).

So at any moment, summed over groups::

    datagrams_due = datagrams_out + drops{no_peer} + drops{slow_peer_queue} + drops{link_lost_queue}
                    + queued_datagrams

and with a single egress peer ``datagrams_in = datagrams_out + those drops + queued_datagrams``.
With several peers ``datagrams_out`` is summed over them (one datagram to London and Tokyo is two).

The egress counts every datagram of the DATA and RUN frames it decodes in
``datagrams_in{group}``; each one is emitted
(``datagrams_out``), a repeat (``duplicates``), or dropped (``drops`` ``oversize``,
``not_multicast``, ``send_error``): ``datagrams_in = datagrams_out + duplicates + drops``.
Datagrams that never reached it show as ``gaps``. A group with ``--unicast`` targets owes each
datagram it would emit once to each target instead: every copy counts in ``datagrams_out`` (as
at an ingress with several peers) or in ``drops`` (``unicast_refused``, ``send_error``), and per
target in ``unicast_datagrams_out{group,target}`` or ``unicast_drops{group,target,reason}``, so
with one target the identity above holds as it is. An egress with ``--serve`` keeps the
counters of what it serves the egresses below it apart, as an ingress counts them, under
``mcastkit_relay_downstream_*`` (``datagrams_in{group}`` there: what it took to relay).

Unicast delivery (``relay egress --unicast G:P=HOST:PORT[,HOST:PORT...]``)
--------------------------------------------------------------------------
For receivers that cannot join a group (Fargate tasks, applications that take only unicast,
hosts with no multicast domain), the datagrams the egress would emit to G:P (after ``--map``;
an ``--allow`` group) go as unicast UDP to each listed receiver instead of as multicast; groups
without targets stay multicast. Sequencing, gaps, duplicates and the MTU check are the group's,
as before; a RUN goes to each target as one UDP GSO message. Each (group, target) has a UDP
socket connected to the target (:mod:`mcastkit.relay.unicast`), so the kernel reports the
target's host refusing a datagram (ICMP port unreachable) as ``ECONNREFUSED`` on a later send:
that copy is counted in ``drops{reason="unicast_refused"}`` and the target's
``unicast_drops``, logged once per 10 s, and nothing else changes (an unconnected socket never
hears of it). Those sent before the kernel learnt of the refusal count as out: the kernel took
them. Unicast leaves from the address the route to the target picks, with TTL 64.

Relay tree (``relay egress --serve HOST:PORT``)
------------------------------------------------
An egress may also serve egresses below it (datacenter, London, Tokyo): they dial it, with the
same secret and TLS options, and the same protocol, as they would an ingress
(:mod:`mcastkit.relay.downstream`). It relays every DATA and RUN frame it takes, every group,
before its own ``--map`` and ``--allow``, as the ingress framed it: the same group, port,
sequence numbers and receive time, so an egress below counts gaps against the ingress's
numbering. Repeats it took are relayed once (a RUN cut where needed); a gap stays a gap. What
it serves goes through the ingress's machinery (:class:`mcastkit.relay.fanout.Fanout`): a
queue per egress below (``--queue-bytes``; one further behind is dropped, ``slow_peer``,
without slowing the link up, the local emission or the others), a replay window
(``--replay-bytes``, ``--replay-seconds``) and RESUME, so a cut between it and an egress below
loses nothing the window covers. Its RESUME up names every stream it relays, not only those it
emits, so an outage above it is replayed to it and relayed in order, as new, to the egresses
below, whose links stay up on their heartbeats meanwhile. Toward the egresses below it has a
session id of its own: random at every start (it restarts: they start fresh, and say so), and
drawn anew when the ingress it relays is a new session (the ingress restarted and numbers from
1 again): it then closes their links (``disconnects{reason="upstream_session"}``) and forgets
its window, and they come back to a session they do not know and start fresh (a handshake
under way meanwhile is closed, ``session_changed``, and comes back too). It relays one
ingress session (the command line takes one upstream: ``--connect`` once, or ``--listen`` with
``--max-peers 1``).

Operation
---------
- After the handshake both sides send a HEARTBEAT every ``--heartbeat`` seconds (default 1) and
  drop a link on which nothing arrived for three intervals. A relay busy with data also sends
  them from its data path (timers run late on a busy event loop), so load alone never makes a
  link look dead. The dialing side reconnects with exponential backoff (0.1 s doubling to 5 s,
  with jitter; it is reset once a link has stayed up for 5 s).
- One ingress serves many egress peers (``--listen``, or ``--connect`` repeated). Each peer has a
  bounded send queue (``--queue-bytes``); a peer that falls further behind is dropped, counted
  in ``mcastkit_relay_disconnects_total{reason="slow_peer"}`` (its queued datagrams in
  ``drops{reason="slow_peer_queue"}``) and logged, and never slows the others. It reconnects
  and resumes from the replay window; what the window no longer holds shows as gaps.
- ``--max-peers`` counts authenticated peers only. At most 128 accepted connections may be in
  the handshake at once; each further one closes another (``reason="handshake_evicted"``): the
  oldest that has sent nothing for 0.25 s, else the oldest seen to have sent something, else the
  oldest. A real peer sends its HELLO as soon as it connects and completes within a round
  trip, so strangers that connect and say nothing, or say part of a handshake, cannot lock it
  out (``bench/relay_flood.py``: 20 of 20 handshakes under 500 reconnecting strangers).
- Malformed input closes only that connection (``reason="protocol_error"`` or
  ``"truncated_frame"``), with a log line naming the peer and the fault.
- SIGTERM: the ingress stops reading multicast, forwards what had already arrived, flushes each
  queue (at most 2 s), sends BYE and exits 0; the egress sends BYE and exits 0.
- ``--metrics HOST:PORT`` serves ``/metrics`` (Prometheus text: datagrams and bytes in/out,
  datagrams of coalesced bursts (``datagrams_in_runs``), gaps and duplicates per group; drops
  by reason (see "Counters"); disconnects by reason; peers; reconnects; resumes, replayed and
  unrecoverable; auth failures) and
  ``/healthz`` (200 with a JSON summary while the event loop runs, 503 if it stalls; it does
  not fail merely because no peer is connected, so ECS does not restart a healthy egress
  during a datacenter outage).
- Never let an egress emit onto a group:port that the ingress joins on the same network (use
  ``--map``), or the ingress will hear its own output.
- Hot path (:mod:`mcastkit.net.mmsg`): the ingress reads up to 64 messages per ``recvmmsg``
  call, each a datagram or a run the kernel coalesced (UDP GRO: one trip through the stack
  for a burst), frames them (a datagram in place, a run as RUN frames) and writes the batch
  once per peer; the egress sends each TCP read's datagrams with one ``sendmmsg`` straight
  out of the chunk it decoded, a run of equal-size datagrams to one group as one UDP GSO
  message (cut into separate datagrams just before the device). Receivers get the same
  datagrams either way. Counters are plain integers read at scrape time. Each joined group
  takes about 4 MiB of receive slots in the ingress.
"""
