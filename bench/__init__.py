"""Benchmarks of the publishing pipeline (bench/README.md): each scenario runs the product and a
reference measured in the same run, on loopback, and writes ``bench/results/<scenario>.json``
and one chart, ``bench/results/summary.png``. ``python -m bench --help`` says how to run them."""
