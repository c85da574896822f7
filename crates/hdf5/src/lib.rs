//! HDF5 for Keras files.
