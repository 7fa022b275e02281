"""The design layer of the benchmark: the real submit, worker and status handlers in-process
against a model of S3, SQS and EventBridge with AWS's conditional-write answers and an injected
latency per call (sleeping, not computing), so the figures measure the design, not this machine.
"""
