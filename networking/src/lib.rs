//! Pod networking (issue 4, in progress): the `--net` request, CNI network
//! configurations loaded with rkt's rules, and running CNI plugins. The CNI runtime, the
//! project's plugins, port forwarding and DNS build on these.

pub mod chain;
pub mod conf;
pub mod plugin;
pub mod request;

#[cfg(test)]
mod test_netns;
