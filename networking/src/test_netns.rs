//! A network namespace for a unit test, made and removed with `ip netns`
//! (iproute2), so tests drive plugins in real namespaces.

use std::path::PathBuf;
use std::process::Command;

pub struct TestNetns(pub String);

impl TestNetns {
    pub fn new(tag: &str) -> Self {
        let name = format!("rkt-test-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        TestNetns(name)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
