//! CPython marshal decoding (in progress).
