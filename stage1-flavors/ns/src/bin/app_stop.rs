//! ns `app/stop` entrypoint: stops a running app of a mutable pod (SIGTERM,
//! SIGKILL after the grace period) and answers once it is gone; exit status
//! 5 when it was not running (rkt's).

use stage1_ns::control::Request;
use stage1_ns::crossing;

fn main() {
    crossing::main(|| crossing::simple(|app| Request::Stop { app }))
}
