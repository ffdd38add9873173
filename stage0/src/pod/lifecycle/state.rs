//! Pod states and the directories that hold them.

use std::fmt;

/// A pod's state: the directory it is in × whether its exclusive lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodState {
    Embryo,
    Preparing,
    AbortedPrepare,
    Prepared,
    Running,
    Deleting,
    ExitedDeleting,
    Exited,
    ExitedGarbage,
    Garbage,
}

impl PodState {
    /// rkt's name, as printed by `list` and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            PodState::Embryo => "embryo",
            PodState::Preparing => "preparing",
            PodState::AbortedPrepare => "aborted prepare",
            PodState::Prepared => "prepared",
            PodState::Running => "running",
            PodState::Deleting => "deleting",
            PodState::ExitedDeleting => "exited deleting",
            PodState::Exited => "exited",
            PodState::ExitedGarbage => "exited garbage",
            PodState::Garbage => "garbage",
        }
    }

    /// The pod ran and is not running any more.
    pub fn is_after_run(self) -> bool {
        matches!(
            self,
            PodState::Exited | PodState::ExitedGarbage | PodState::ExitedDeleting
        )
    }

    /// Terminal from a waiter's point of view (`status --wait`).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            PodState::Exited
                | PodState::ExitedGarbage
                | PodState::ExitedDeleting
                | PodState::AbortedPrepare
                | PodState::Garbage
                | PodState::Deleting
        )
    }

    pub(crate) fn from_dir(dir: StateDir, locked: bool) -> PodState {
        match (dir, locked) {
            (StateDir::Embryo, _) => PodState::Embryo,
            (StateDir::Prepare, true) => PodState::Preparing,
            (StateDir::Prepare, false) => PodState::AbortedPrepare,
            (StateDir::Prepared, _) => PodState::Prepared,
            (StateDir::Run, true) => PodState::Running,
            (StateDir::Run, false) => PodState::Exited,
            (StateDir::ExitedGarbage, true) => PodState::ExitedDeleting,
            (StateDir::ExitedGarbage, false) => PodState::ExitedGarbage,
            (StateDir::Garbage, true) => PodState::Deleting,
            (StateDir::Garbage, false) => PodState::Garbage,
        }
    }
}

impl fmt::Display for PodState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A directory under `$dir/pods`. Pods only ever move to later ones in
/// [`StateDir::ALL`] order, so scanning in that order cannot miss a pod that
/// is being renamed concurrently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateDir {
    Embryo,
    Prepare,
    Prepared,
    Run,
    ExitedGarbage,
    Garbage,
}

impl StateDir {
    pub const ALL: [StateDir; 6] = [
        StateDir::Embryo,
        StateDir::Prepare,
        StateDir::Prepared,
        StateDir::Run,
        StateDir::ExitedGarbage,
        StateDir::Garbage,
    ];

    /// rkt's `IncludeMostDirs`: what `list` shows.
    pub const MOST: [StateDir; 4] = [
        StateDir::Prepare,
        StateDir::Prepared,
        StateDir::Run,
        StateDir::ExitedGarbage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StateDir::Embryo => "embryo",
            StateDir::Prepare => "prepare",
            StateDir::Prepared => "prepared",
            StateDir::Run => abi::pod_dir::RUN_STATE_DIR,
            StateDir::ExitedGarbage => "exited-garbage",
            StateDir::Garbage => "garbage",
        }
    }

    /// Whether a held exclusive lock changes the state (not for embryo and
    /// prepared, whose state the directory alone determines).
    pub(crate) fn lock_matters(self) -> bool {
        !matches!(self, StateDir::Embryo | StateDir::Prepared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rkt_state_strings() {
        assert_eq!(PodState::AbortedPrepare.to_string(), "aborted prepare");
        assert_eq!(PodState::ExitedGarbage.to_string(), "exited garbage");
        assert_eq!(PodState::ExitedDeleting.to_string(), "exited deleting");
        assert_eq!(PodState::from_dir(StateDir::Run, false), PodState::Exited);
        assert_eq!(
            PodState::from_dir(StateDir::Prepared, true),
            PodState::Prepared
        );
    }
}
