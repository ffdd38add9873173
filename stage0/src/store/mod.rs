//! The image store: CAS blobs, the SQLite image database and the tree store.
