"""The response cache: exact-match answers in front of admission, shared by the fleet.

`ResponseCache` (engine.py) is built by the router when `litellm_settings.cache` is true; a
hit is answered before a request takes a slot or any rate limit. See docs/cache.md.
"""
