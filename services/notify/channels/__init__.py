"""One adapter per channel, each behind the :class:`~services.notify.channels.base.Sender` interface.

An adapter speaks its provider's protocol and turns every answer - refusals, garbage, timeouts,
dropped connections included - into an :class:`~services.notify.domain.outcomes.Outcome`; it
never raises for a provider's behaviour.
"""
