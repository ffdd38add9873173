//! Applying an app's isolators to the process that will exec it:
//! capabilities ([`caps`]), seccomp ([`seccomp`]), no_new_privs and the OOM
//! score ([`process`]). Cgroup isolators (memory, cpu) are elsewhere.
//!
//! A stage1 uses [`AppSecurity`] in the forked child that becomes the app,
//! after its mounts and chroot:
//!
//! 1. [`AppSecurity::apply_before_credentials`] (still root): OOM score,
//!    bounding set, inheritable and ambient cleared;
//! 2. setgroups / setgid / setuid to the app's user;
//! 3. [`AppSecurity::apply_after_credentials`]: no_new_privs, then the
//!    seccomp filter (loaded last so the filter need not allow the setup's
//!    own calls);
//! 4. execve.
//!
//! Both `apply_*` steps allocate nothing when they succeed, so they are
//! safe between fork and exec of a multi-threaded parent (`pre_exec`).

pub mod caps;
mod errno;
pub mod process;
pub mod seccomp;
mod syscalls_x86_64;

use abi::schema::IsolatorValue;

pub use caps::{CapabilitySet, CapsError};
pub use process::ProcessError;
pub use seccomp::{SeccompError, SeccompFilter};

/// Errors computing or applying an app's isolators.
#[derive(Debug, thiserror::Error)]
pub enum IsolatorError {
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// The `--insecure-options` that lift isolation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Insecure {
    /// `capabilities`: the app keeps every capability.
    pub capabilities: bool,
    /// `seccomp`: no seccomp filter.
    pub seccomp: bool,
}

/// What the app's process gets, computed once from its isolators.
#[derive(Debug, Clone)]
pub struct AppSecurity {
    pub capabilities: CapabilitySet,
    /// `None`: no filter.
    pub seccomp: Option<SeccompFilter>,
    /// From `os/linux/no-new-privileges`, and forced for non-root apps
    /// with a seccomp filter (rkt's rule: they cannot load it otherwise).
    pub no_new_privs: bool,
    pub oom_score_adj: Option<i32>,
    program: Option<seccomp::Program>,
}

impl AppSecurity {
    /// Computes the app's settings; `uid` is the user the app runs as.
    /// The filter is compiled here so errors surface before any change.
    pub fn new(
        isolators: &[IsolatorValue],
        uid: u32,
        insecure: Insecure,
    ) -> Result<AppSecurity, IsolatorError> {
        let capabilities = caps::capability_set(isolators, insecure.capabilities)?;
        let seccomp = seccomp::seccomp_filter(isolators, insecure.seccomp)?;
        let program = seccomp.as_ref().map(SeccompFilter::compile).transpose()?;
        let mut no_new_privs = false;
        let mut oom_score_adj = None;
        for iso in isolators {
            match iso {
                IsolatorValue::NoNewPrivileges(b) => no_new_privs = *b,
                IsolatorValue::OomScoreAdj(n) => oom_score_adj = Some(*n),
                _ => {}
            }
        }
        if uid != 0 && seccomp.is_some() {
            no_new_privs = true;
        }
        Ok(AppSecurity {
            capabilities,
            seccomp,
            no_new_privs,
            oom_score_adj,
            program,
        })
    }

    /// Step 1, as root before changing uid/gid: OOM score and capability
    /// bounding set.
    pub fn apply_before_credentials(&self) -> Result<(), IsolatorError> {
        if let Some(n) = self.oom_score_adj {
            process::set_oom_score_adj(n)?;
        }
        caps::apply_bounding(self.capabilities)?;
        Ok(())
    }

    /// Step 3, after changing uid/gid, right before exec: no_new_privs and
    /// the seccomp filter.
    pub fn apply_after_credentials(&self) -> Result<(), IsolatorError> {
        if self.no_new_privs {
            process::set_no_new_privs()?;
        }
        if let Some(program) = &self.program {
            seccomp::load(program)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_root_with_seccomp_forces_no_new_privs() {
        let s = AppSecurity::new(&[], 1000, Insecure::default()).unwrap();
        assert!(s.no_new_privs);
        let s = AppSecurity::new(&[], 0, Insecure::default()).unwrap();
        assert!(!s.no_new_privs);
        let s = AppSecurity::new(
            &[],
            1000,
            Insecure {
                capabilities: true,
                seccomp: true,
            },
        )
        .unwrap();
        assert!(!s.no_new_privs && s.seccomp.is_none() && s.capabilities.is_all());
        let s = AppSecurity::new(
            &[
                IsolatorValue::NoNewPrivileges(true),
                IsolatorValue::OomScoreAdj(-5),
            ],
            0,
            Insecure::default(),
        )
        .unwrap();
        assert!(s.no_new_privs);
        assert_eq!(s.oom_score_adj, Some(-5));
    }
}
