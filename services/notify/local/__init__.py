"""Local servers that speak each provider's protocol, for tests, benchmarks and ``make run``.

- ``smtp_sink``: an SMTP server (aiosmtpd) with STARTTLS and AUTH, keeping what it receives;
- ``telegram_api``: the Bot API's ``sendMessage``, enforcing Telegram's limits (429 with
  ``retry_after``), 403 for blocked chats, 400 for unknown ones;
- ``push_service``: a Web Push service that hands out subscriptions, checks each push's VAPID JWT
  and decrypts its aes128gcm payload with the subscription's keys, as a browser would;
- ``sms_api``: Twilio's Messages API with basic auth and signed status callbacks.

Each records what it received and answers ``GET /_log`` (HTTP ones) so a test or the admin page
can see it. ``python -m services.notify.local`` runs all four (``make run``).
"""
