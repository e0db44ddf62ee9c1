"""The domain: tickets, rules, routing and SLA as plain values.

Nothing here performs I/O, reads the clock or knows about Discord, SQL, HTTP or LLMs;
``tests/test_core_purity.py`` enforces it. Time is always passed in.
"""
