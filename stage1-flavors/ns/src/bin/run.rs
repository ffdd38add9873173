//! ns `run` entrypoint: the pod on the host (see [`stage1_ns::launch`]).

fn main() {
    stage1_ns::launch::main(stage1_ns::launch::Placement::Host)
}
