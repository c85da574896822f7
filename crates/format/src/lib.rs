//! Keras file formats.
