"""Business domains. Each owns its tables; cross-domain work lives in a domain's flows.py."""
