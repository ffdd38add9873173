//! The `rkt` stage0: command line, image store, fetching, pod lifecycle and
//! stage1 selection/exec.
