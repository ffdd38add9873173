//! The app-argument grammar shared by `run` and `prepare` (rkt's
//! `cli_apps.go`): images with per-app flags after each, `-- args` blocks
//! ended by `---`, and per-app flags before the first image refused (except
//! `--mount`, which then applies to every app).

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{ArgMatches, Args, FromArgMatches};

// Flags that apply to the image before them. Not a doc comment: clap would
// take it for the `about` of the commands that flatten it (see `cli::Command`).
#[derive(Args, Debug, Clone, Default)]
pub struct AppFlags {
    /// local signature file to use in validating the preceding image
    #[arg(long, value_name = "FILE")]
    pub signature: Option<String>,
    /// override the exec command for the preceding image
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    pub exec: Option<String>,
    /// override the working directory of the preceding image
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// mount the rootfs of the preceding app read-only
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub readonly_rootfs: Option<bool>,
    /// mount a volume into the preceding app: volume=NAME,target=PATH (before any image: into every app)
    #[arg(long, value_name = "volume=NAME,target=PATH")]
    pub mount: Vec<String>,
    /// user override for the preceding image (name, uid, or path)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// group override for the preceding image (name, gid, or path)
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// supplementary group IDs override for the preceding image (e.g. '10,20')
    #[arg(long, value_name = "GIDS")]
    pub supplementary_gids: Option<String>,
    /// set the name of the app (default: the image name's last component)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// set an app annotation: NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    pub annotation: Vec<String>,
    /// set an app user annotation: NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    pub user_annotation: Vec<String>,
    /// set an app user label: NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    pub user_label: Vec<String>,
    /// set an environment variable of the preceding app: NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    pub environment: Vec<String>,
    /// memory limit for the preceding image (e.g. 50M, 1G, 16Mi)
    #[arg(long, value_name = "QUANTITY")]
    pub memory: Option<String>,
    /// CPU limit for the preceding image (e.g. 500m)
    #[arg(long, value_name = "QUANTITY")]
    pub cpu: Option<String>,
    /// CPU shares for the preceding image (relative weight)
    #[arg(long, value_name = "SHARES")]
    pub cpu_shares: Option<String>,
    /// capabilities to retain (e.g. CAP_NET_ADMIN,CAP_SYS_ADMIN)
    #[arg(long, alias = "cap-retain", value_name = "CAPS")]
    pub caps_retain: Option<String>,
    /// capabilities to remove (e.g. CAP_MKNOD,CAP_NET_RAW)
    #[arg(long, alias = "cap-remove", value_name = "CAPS")]
    pub caps_remove: Option<String>,
    /// seccomp filter override: mode=retain|remove[,errno=E],syscall,...
    #[arg(long, value_name = "FILTER")]
    pub seccomp: Option<String>,
    /// OOM score adjustment for the preceding image (-1000..1000)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
}

impl AppFlags {
    /// The first per-app flag that was given (other than `--mount`), by name.
    pub fn first_set_flag(&self) -> Option<&'static str> {
        let set: [(bool, &'static str); 19] = [
            (self.signature.is_some(), "--signature"),
            (self.exec.is_some(), "--exec"),
            (self.working_dir.is_some(), "--working-dir"),
            (self.readonly_rootfs.is_some(), "--readonly-rootfs"),
            (self.user.is_some(), "--user"),
            (self.group.is_some(), "--group"),
            (self.supplementary_gids.is_some(), "--supplementary-gids"),
            (self.name.is_some(), "--name"),
            (!self.annotation.is_empty(), "--annotation"),
            (!self.user_annotation.is_empty(), "--user-annotation"),
            (!self.user_label.is_empty(), "--user-label"),
            (!self.environment.is_empty(), "--environment"),
            (self.memory.is_some(), "--memory"),
            (self.cpu.is_some(), "--cpu"),
            (self.cpu_shares.is_some(), "--cpu-shares"),
            (self.caps_retain.is_some(), "--caps-retain"),
            (self.caps_remove.is_some(), "--caps-remove"),
            (self.seccomp.is_some(), "--seccomp"),
            (self.oom_score_adj.is_some(), "--oom-score-adj"),
        ];
        set.into_iter().find(|(s, _)| *s).map(|(_, n)| n)
    }
}

/// One image on the command line with its flags and arguments.
#[derive(Debug, Clone, Default)]
pub struct AppSpec {
    pub image: String,
    pub flags: AppFlags,
    /// Arguments after `--`, appended to the exec.
    pub args: Vec<String>,
}

/// Splits what follows the pod-level flags into apps.
pub fn parse_apps(raw: &[String]) -> Result<Vec<AppSpec>> {
    let value_flags = value_taking_flags();
    let mut apps: Vec<(String, Vec<String>, Option<Vec<String>>)> = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let arg = &raw[i];
        i += 1;
        if arg == "---" {
            continue;
        }
        if arg == "--" {
            let Some(app) = apps.last_mut() else {
                bail!("\"--\" must follow an image");
            };
            if app.2.is_some() {
                bail!("only one \"--\" argument list per image (end it with \"---\")");
            }
            let end = raw[i..]
                .iter()
                .position(|a| a == "---")
                .map_or(raw.len(), |p| i + p);
            app.2 = Some(raw[i..end].to_vec());
            i = end;
            continue;
        }
        if let Some(flag) = arg.strip_prefix("--").filter(|f| !f.is_empty()) {
            let name = flag.split_once('=').map_or(flag, |(n, _)| n);
            let Some(&takes_value) = value_flags.iter().find(|(n, _)| n == name).map(|(_, v)| v)
            else {
                bail!(
                    "unknown flag \"--{name}\" after an image; per-app flags follow their image, \
                     pod flags go before the first image"
                );
            };
            let app = apps
                .last_mut()
                .ok_or_else(|| anyhow!("--{name} must follow an image"))?;
            app.1.push(arg.clone());
            if takes_value && !flag.contains('=') {
                let value = raw
                    .get(i)
                    .ok_or_else(|| anyhow!("flag --{name} needs a value"))?;
                app.1.push(value.clone());
                i += 1;
            }
            continue;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            bail!("unknown flag {arg:?}; flags are spelled with two dashes");
        }
        apps.push((arg.clone(), Vec::new(), None));
    }
    apps.into_iter()
        .map(|(image, flag_args, args)| {
            let flags = parse_app_flags(&flag_args)
                .with_context(|| format!("invalid flags for image {image:?}"))?;
            Ok(AppSpec {
                image,
                flags,
                args: args.unwrap_or_default(),
            })
        })
        .collect()
}

fn app_command() -> clap::Command {
    AppFlags::augment_args(
        clap::Command::new("app")
            .no_binary_name(true)
            .disable_help_flag(true),
    )
}

/// (long name, takes a separate value) for every per-app flag and alias.
fn value_taking_flags() -> Vec<(String, bool)> {
    let mut cmd = app_command();
    cmd.build();
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        // Flags with optional values (`--readonly-rootfs[=BOOL]`) need `=`.
        let takes = arg.get_num_args().is_some_and(|n| n.min_values() > 0);
        if let Some(long) = arg.get_long() {
            out.push((long.to_string(), takes));
        }
        for alias in arg.get_all_aliases().into_iter().flatten() {
            out.push((alias.to_string(), takes));
        }
    }
    out
}

fn parse_app_flags(args: &[String]) -> Result<AppFlags> {
    let matches: ArgMatches = app_command()
        .try_get_matches_from(args)
        .map_err(|e| anyhow!("{}", first_line(&e.to_string())))?;
    Ok(AppFlags::from_arg_matches(&matches)?)
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn images_flags_and_arg_blocks() {
        let apps = parse_apps(&v(
            "a.aci --exec /bin/sh --user=1000 -- -c echo --- b.aci --name=bee --readonly-rootfs",
        ))
        .unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].image, "a.aci");
        assert_eq!(apps[0].flags.exec.as_deref(), Some("/bin/sh"));
        assert_eq!(apps[0].flags.user.as_deref(), Some("1000"));
        assert_eq!(apps[0].args, v("-c echo"));
        assert_eq!(apps[1].flags.name.as_deref(), Some("bee"));
        assert_eq!(apps[1].flags.readonly_rootfs, Some(true));
    }

    #[test]
    fn args_run_to_the_end_without_separator() {
        let apps = parse_apps(&v("a.aci -- --exec x")).unwrap();
        assert_eq!(apps[0].args, v("--exec x"));
        assert!(apps[0].flags.exec.is_none());
    }

    #[test]
    fn errors_are_clear() {
        let e = parse_apps(&v("a.aci --net=host")).unwrap_err().to_string();
        assert!(e.contains("--net"), "{e}");
        assert!(parse_apps(&v("a.aci -- x --- -- y")).is_err());
        let e = parse_apps(&v("a.aci --exec")).unwrap_err().to_string();
        assert!(e.contains("needs a value"), "{e}");
    }

    #[test]
    fn repeated_flags_accumulate() {
        let apps = parse_apps(&v(
            "a.aci --environment=A=1 --environment B=2 --cap-retain=CAP_KILL",
        ))
        .unwrap();
        assert_eq!(apps[0].flags.environment, v("A=1 B=2"));
        assert_eq!(apps[0].flags.caps_retain.as_deref(), Some("CAP_KILL"));
    }
}
