//! Pod networking: the `--net` request, CNI network configurations loaded
//! with rkt's rules, running CNI plugins and their chains, and a pod's
//! networks from setup (its network namespace, `net-info.json`, the
//! result cache) to teardown at gc.

pub mod chain;
pub mod conf;
pub mod dns;
pub mod netns;
pub mod plugin;
pub mod pod;
pub mod portfwd;
pub mod request;

#[cfg(test)]
mod test_netns;
