//! What every stage1 flavor shares.
