"""Side-by-side benchmarks: sprocket against a raw-socket baseline and PodSixNet, in one run.

Run ``python -m benchmarks`` (everything), ``python -m benchmarks throughput latency`` (some groups) or
add ``--quick`` for a short smoke run.  See benchmarks/README.md.  Nothing here is part of the test run.
"""
