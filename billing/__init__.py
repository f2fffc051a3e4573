"""Billing export: closed days of metered usage sent to Stripe as billing meter events."""
