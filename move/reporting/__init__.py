"""Stage 5, reporting: tables and figures of trained runs, beside the paper's numbers.

Modules: ``registry`` (what a table is), ``table_declarations`` (every built-in table, declared,
and the registry as read), ``tables`` (methods and imbalance tables), ``seeds`` (tables over
seeds), ``paper`` (the paper's published numbers),
``plots`` (figures with the CSV behind each), ``diagnostics`` (values inside a trained model:
attention, codebook assignments, confidences).
"""
