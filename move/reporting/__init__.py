"""Stage 5, reporting: tables and figures of trained runs, beside the paper's numbers.

Modules: ``tables`` (methods and imbalance tables), ``paper`` (the paper's published numbers),
``plots`` (figures with the CSV behind each), ``diagnostics`` (values inside a trained model:
attention, codebook assignments, confidences).
"""
