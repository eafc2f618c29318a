"""The fuzz corpus and its harness (tests/test_fuzz.py runs it)."""
