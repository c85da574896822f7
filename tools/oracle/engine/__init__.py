"""Engine fixture cases, one module per layer family (see gen_engine.py)."""
