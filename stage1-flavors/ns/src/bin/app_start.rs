//! ns `app/start` entrypoint: starts an app added to a mutable pod (again,
//! after it exited).

use stage1_ns::control::Request;
use stage1_ns::crossing;

fn main() {
    crossing::main(|| crossing::simple(|app| Request::Start { app }))
}
