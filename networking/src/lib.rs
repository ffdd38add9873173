//! Pod networking (CNI). Filled in by the networking issue.
