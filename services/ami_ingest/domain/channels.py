"""Channels and bridges: which channels are up, and who is bridged to whom."""

from __future__ import annotations

import collections
from dataclasses import replace

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.model import Channel, ChannelRemoved, ChannelUpserted, StateChange


class ChannelTable:
    """Channels by Uniqueid, plus bridge membership (BridgeUniqueid → Uniqueids, in entry order)."""

    __slots__ = ("anomalies", "bridges", "channels")

    def __init__(self, anomalies: collections.Counter[str]) -> None:
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, list[str]] = {}
        self.anomalies = anomalies

    def snapshot(self, e: ev.ChannelEvent, now: float) -> list[StateChange]:
        """Newchannel / Newstate / NewCallerid: the event carries the channel's current fields."""
        old = self.channels.get(e.unique_id)
        if old is None:
            if not isinstance(e, ev.Newchannel):
                # We missed its Newchannel (it is evidently up): take it, but say so.
                self.anomalies["channel_seen_before_newchannel"] += 1
            new = Channel(
                channel_name=e.channel,
                unique_id=e.unique_id,
                linked_id=e.linked_id or e.unique_id,
                caller_id_num=e.caller_id_num or "",
                caller_id_name=e.caller_id_name or "",
                context=e.context or "",
                extension=e.extension or "",
                state=e.state or "",
                started_at=now,
            )
        else:
            new = replace(
                old,
                channel_name=e.channel,
                linked_id=e.linked_id if e.linked_id is not None else old.linked_id,
                caller_id_num=e.caller_id_num if e.caller_id_num is not None else old.caller_id_num,
                caller_id_name=e.caller_id_name if e.caller_id_name is not None else old.caller_id_name,
                context=e.context if e.context is not None else old.context,
                extension=e.extension if e.extension is not None else old.extension,
                state=e.state if e.state is not None else old.state,
            )
            if new == old:
                return []
        self.channels[e.unique_id] = new
        return [ChannelUpserted(new)]

    def hangup(self, e: ev.Hangup) -> list[StateChange]:
        old = self.channels.pop(e.unique_id, None)
        if old is None:
            self.anomalies["hangup_of_unknown_channel"] += 1
            return []
        changes: list[StateChange] = [ChannelRemoved(e.unique_id)]
        if old.bridge_id:
            changes.extend(self._leave(old.bridge_id, e.unique_id))
        return changes

    def bridge_create(self, e: ev.BridgeCreate) -> list[StateChange]:
        self.bridges.setdefault(e.bridge_id, [])
        return []

    def bridge_enter(self, e: ev.BridgeEnter) -> list[StateChange]:
        members = self.bridges.setdefault(e.bridge_id, [])
        if e.unique_id not in members:
            members.append(e.unique_id)
        channel = self.channels.get(e.unique_id)
        if channel is None:
            self.anomalies["bridge_enter_of_unknown_channel"] += 1
        elif channel.bridge_id and channel.bridge_id != e.bridge_id:
            self._drop_member(channel.bridge_id, e.unique_id)
        return self._refresh(e.bridge_id)

    def bridge_leave(self, e: ev.BridgeLeave) -> list[StateChange]:
        if e.unique_id not in self.bridges.get(e.bridge_id, ()):
            self.anomalies["bridge_leave_of_non_member"] += 1
            return []
        return self._leave(e.bridge_id, e.unique_id)

    def bridge_destroy(self, e: ev.BridgeDestroy) -> list[StateChange]:
        members = self.bridges.pop(e.bridge_id, [])
        changes: list[StateChange] = []
        for unique_id in members:
            changes.extend(self._set_bridge(unique_id, "", ""))
        return changes

    def _leave(self, bridge_id: str, unique_id: str) -> list[StateChange]:
        self._drop_member(bridge_id, unique_id)
        changes = self._set_bridge(unique_id, "", "")
        changes.extend(self._refresh(bridge_id))
        return changes

    def _drop_member(self, bridge_id: str, unique_id: str) -> None:
        members = self.bridges.get(bridge_id)
        if members and unique_id in members:
            members.remove(unique_id)

    def _refresh(self, bridge_id: str) -> list[StateChange]:
        """Recompute ``bridged_to`` of every member: the first other member's channel name."""
        members = self.bridges.get(bridge_id, [])
        changes: list[StateChange] = []
        for unique_id in members:
            peer = next((self.channels[o].channel_name for o in members if o != unique_id and o in self.channels), "")
            changes.extend(self._set_bridge(unique_id, bridge_id, peer))
        return changes

    def _set_bridge(self, unique_id: str, bridge_id: str, peer: str) -> list[StateChange]:
        channel = self.channels.get(unique_id)
        if channel is None or (channel.bridge_id == bridge_id and channel.bridged_to == peer):
            return []
        new = replace(channel, bridge_id=bridge_id, bridged_to=peer)
        self.channels[unique_id] = new
        return [ChannelUpserted(new)]

    def rebuild(self, channels: dict[str, Channel]) -> None:
        """Adopt a resynced set of channels; bridges come from their ``bridge_id``."""
        self.channels = dict(channels)
        self.bridges = {}
        for channel in channels.values():
            if channel.bridge_id:
                self.bridges.setdefault(channel.bridge_id, []).append(channel.unique_id)
        for bridge_id in list(self.bridges):
            self._refresh(bridge_id)

    def find_by_name(self, name: str) -> Channel | None:
        for channel in self.channels.values():
            if channel.channel_name == name:
                return channel
        return None
