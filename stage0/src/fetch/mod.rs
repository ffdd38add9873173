//! Image fetching (local files now; HTTPS, discovery and docker later).
