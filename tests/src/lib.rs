//! Harness for the functional tests.
