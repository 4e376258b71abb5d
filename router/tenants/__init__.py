"""Tenants: virtual keys and teams, who may use what, and what they may spend.

`records` holds the frozen records and the caller's `Principal`; the store keeps records in the
state backend; the enforcement of limits and budgets runs inside the admission scripts.
"""
