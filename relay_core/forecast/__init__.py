"""Spend forecasts: decayed rates of what each provider and key uses, against its limits."""
