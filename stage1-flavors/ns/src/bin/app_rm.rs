//! ns `app/rm` entrypoint: the supervisor forgets a stopped app, unmounts
//! its rootfs and volumes inside the pod and removes its cgroup; stage0
//! then deletes its files.

use stage1_ns::control::Request;
use stage1_ns::crossing;

fn main() {
    crossing::main(|| crossing::simple(|app| Request::Rm { app }))
}
