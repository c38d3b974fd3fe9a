"""The notify service's pure logic: no I/O, tested in milliseconds.

``channels`` (who can be reached how, body limits), ``schedule`` (priorities and send times),
``templates`` (sandboxed Jinja2 rendering), ``telegram_text`` (splitting long texts),
``outcomes`` (what a provider's answer means and what happens next) and ``requests`` (a send
request checked and turned into one delivery per recipient).
"""
