//! Pod networking (issue 4, in progress): the `--net` request and CNI
//! network configurations, loaded with rkt's rules. The CNI runtime, the
//! project's plugins, port forwarding and DNS build on these.

pub mod conf;
pub mod request;
