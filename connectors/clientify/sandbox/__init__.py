"""A local Clientify REST API v1 (quirks, throttling, faults, webhooks) on SQLite.

`app.ClientifySandbox` builds the aiohttp application; the modules beside it each do one
job: `store` (SQLite), `fields`/`schema` (DRF-style validation), `records` (write rules),
`render` (REST and webhook shapes), `filters`, `pagination`, `throttle`, `webhooks`,
`seed` (Spanish demo data) and `timefmt` (the account's time zone).
"""
