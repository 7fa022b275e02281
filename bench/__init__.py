"""Benchmarks of async-jobs on the local stack: ``python -m bench`` (``make bench``).

Submit latency async vs the synchronous design it replaces, end-to-end throughput, worker
scaling, state contention, AWS requests and dollars per record, cold start. Writes
``bench/results/latest.{json,md,png}``.
"""
