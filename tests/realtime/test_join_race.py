"""A join racing the removal of its user, on a cluster: the join reads the
membership on process A while the owner's removal commits on process B and its
revocation reaches A over Redis. Whichever wins, the removed socket hears
nothing more of the BAM (it did in a third of the rounds)."""

import asyncio

import pytest

from tests.live import Api, Peer

pytestmark = [pytest.mark.services, pytest.mark.live]

ROUNDS = 15
# The join is sent this much later each round, sweeping it across the removal's
# round trip so that some rounds read the membership just before it commits.
OFFSET_STEP_S = 0.002


async def _join_after(peer, bam_id: str, *, offset_s: float):
    await asyncio.sleep(offset_s)  # a deliberate offset between two requests
    return await peer.call("join-bam", bam_id)


async def test_a_join_racing_the_removal_never_leaves_the_socket_in_the_room(
    private_stack,
):
    stack, _ = private_stack
    first, second = stack.start_servers("A", "B")
    api = Api(second.url)
    owner = await api.account()
    watcher = Peer(second.url, owner.access)
    await watcher.connect()
    leaks = []
    for round_ in range(ROUNDS):
        member = await api.account()
        bam = await api.bam(owner, member)
        side = await api.bam(owner, member)
        m = Peer(first.url, member.access)
        await m.connect()
        await m.call("join-bam", side["id"])
        await watcher.call("join-bam", bam["id"])
        join, _ = await asyncio.gather(
            _join_after(m, bam["id"], offset_s=round_ * OFFSET_STEP_S),
            api.request(
                "DELETE",
                f"/bams/{bam['id']}/participants/{member.id}",
                token=owner.access,
                expect=204,
            ),
        )
        await watcher.call("typing-start", bam["id"])
        await api.post_message(owner, bam["id"], "not for the removed")
        fence = await api.post_message(owner, side["id"], f"fence {round_}")
        await m.wait_for("new-message", where=lambda e, f=fence: e["id"] == f["id"])
        heard = [e for e in m.got("typing-status") if e["bamId"] == bam["id"]]
        heard += [e for e in m.got("new-message") if e["bamId"] == bam["id"]]
        if heard:
            leaks.append((round_, join, heard))
        await m.close()
    await watcher.close()
    await api.close()
    assert not leaks, (
        f"{len(leaks)} of {ROUNDS} removed sockets kept hearing: {leaks[:2]}"
    )
