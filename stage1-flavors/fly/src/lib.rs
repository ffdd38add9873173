//! The fly stage1 flavor.
