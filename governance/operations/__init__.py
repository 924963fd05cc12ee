"""Appliance-wide operations that span several parts of the governed state."""
