//! A small ACI writer.
