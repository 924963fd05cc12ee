"""What the controller must be able to show a regulator, generated from the governed
state: the record of processing activities (GDPR Art. 30, LGPD Art. 37).

Same dependency rule as the rest of `governance`: no web or scheduler framework.
"""
