"""The in-memory fake honours the AmiConnection contract the ingest codes against."""

from __future__ import annotations

from services.ami_ingest.ami.client import AmiClient, AmiConnection
from services.ami_ingest.ami.fake import FakeAmiConnection


def _takes_connection(connection: AmiConnection) -> AmiConnection:
    return connection


async def test_fake_numbers_events_and_list_answers_in_one_sequence() -> None:
    fake = _takes_connection(FakeAmiConnection())
    assert isinstance(fake, FakeAmiConnection)
    fake.answers["QueueStatus"] = ((("Response", "Success"), ("EventList", "start")), [(("Event", "QueueParams"),)])
    before = fake.push_event((("Event", "QueueCallerJoin"), ("Queue", "sales")))
    result = await fake.send_action("QueueStatus", {"Queue": "sales"})
    after = fake.push_event((("Event", "Hangup"),))
    fake.close()
    seen = [event async for event in fake.events()]
    assert seen == [before, after]
    assert before.seq < result.response_seq < result.item_seqs[0] < result.end_seq < after.seq
    assert result.items[0].action_id == result.action_id
    assert fake.sent == [("QueueStatus", {"Queue": "sales"})]


def _client_is_a_connection(client: AmiClient) -> AmiConnection:
    """Checked by mypy: the real client satisfies the same protocol as the fake."""
    return client
