//! The app's credentials, resolved against the APP's `/etc/passwd` and
//! `/etc/group` (parsed here, never through NSS: the host's databases are
//! irrelevant and static binaries cannot use NSS anyway).
//!
//! A user or group is a name from those files, a decimal id, or an absolute
//! path whose owner inside the rootfs is used (appc §6.5, rkt `ParseUserGroup`).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use abi::schema::App;
use thiserror::Error;

use crate::paths::{resolve_in_root, PathError};

#[derive(Debug, Error)]
pub enum UserError {
    #[error("user {0:?} not found in the app's /etc/passwd; use a numeric uid or add the user to the image")]
    UnknownUser(String),
    #[error("group {0:?} not found in the app's /etc/group; use a numeric gid or add the group to the image")]
    UnknownGroup(String),
    #[error("the app's user is empty; appc requires app.user (use \"0\" for root)")]
    EmptyUser,
    #[error("the app's group is empty; appc requires app.group (use \"0\" for root)")]
    EmptyGroup,
    #[error("cannot stat {path:?} (named as the app's {what}) inside the app rootfs: {source}")]
    PathOwner {
        what: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot switch to uid {uid} gid {gid} groups {groups:?}: {step} failed: {errno}")]
    Switch {
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
        step: &'static str,
        errno: nix::errno::Errno,
    },
}

/// One line of an `/etc/passwd` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// One line of an `/etc/group` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// What the app process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    /// From the manifest's `supplementaryGIDs` only, as rkt does.
    pub supplementary_gids: Vec<u32>,
}

/// Parses passwd content; malformed lines and comments are skipped.
pub fn parse_passwd(content: &str) -> Vec<PasswdEntry> {
    content
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Parses group content; malformed lines and comments are skipped.
pub fn parse_group(content: &str) -> Vec<GroupEntry> {
    content
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Reads and parses `<rootfs>/etc/passwd`; a missing file is an empty database.
pub fn read_passwd(rootfs: &Path) -> Result<Vec<PasswdEntry>, UserError> {
    Ok(parse_passwd(&read_db(rootfs, "/etc/passwd")?))
}

/// Reads and parses `<rootfs>/etc/group`; a missing file is an empty database.
pub fn read_group(rootfs: &Path) -> Result<Vec<GroupEntry>, UserError> {
    Ok(parse_group(&read_db(rootfs, "/etc/group")?))
}

fn read_db(rootfs: &Path, file: &str) -> Result<String, UserError> {
    let path = resolve_in_root(rootfs, Path::new(file))?;
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(UserError::Read { path, source }),
    }
}

/// Resolves `user` (name, uid or absolute path) inside `rootfs` to a uid.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<u32, UserError> {
    if user.is_empty() {
        return Err(UserError::EmptyUser);
    }
    if user.starts_with('/') {
        return Ok(path_owner(rootfs, user, "user")?.0);
    }
    if let Some(e) = read_passwd(rootfs)?.into_iter().find(|e| e.name == user) {
        return Ok(e.uid);
    }
    user.parse()
        .map_err(|_| UserError::UnknownUser(user.to_string()))
}

/// Resolves `group` (name, gid or absolute path) inside `rootfs` to a gid.
pub fn resolve_group(rootfs: &Path, group: &str) -> Result<u32, UserError> {
    if group.is_empty() {
        return Err(UserError::EmptyGroup);
    }
    if group.starts_with('/') {
        return Ok(path_owner(rootfs, group, "group")?.1);
    }
    if let Some(e) = read_group(rootfs)?.into_iter().find(|e| e.name == group) {
        return Ok(e.gid);
    }
    group
        .parse()
        .map_err(|_| UserError::UnknownGroup(group.to_string()))
}

/// The uid/gid/supplementary gids the app runs with.
pub fn resolve_credentials(rootfs: &Path, app: &App) -> Result<Credentials, UserError> {
    Ok(Credentials {
        uid: resolve_user(rootfs, &app.user)?,
        gid: resolve_group(rootfs, &app.group)?,
        supplementary_gids: app.supplementary_gids.clone(),
    })
}

/// Switches the calling process to `creds`: supplementary groups, then gid,
/// then uid (the order that still has the privilege for each step).
pub fn apply_credentials(creds: &Credentials) -> Result<(), UserError> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    let fail = |step| {
        move |errno| UserError::Switch {
            uid: creds.uid,
            gid: creds.gid,
            groups: creds.supplementary_gids.clone(),
            step,
            errno,
        }
    };
    let groups: Vec<Gid> = creds
        .supplementary_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).map_err(fail("setgroups"))?;
    setgid(Gid::from_raw(creds.gid)).map_err(fail("setgid"))?;
    setuid(Uid::from_raw(creds.uid)).map_err(fail("setuid"))?;
    Ok(())
}

fn path_owner(rootfs: &Path, path: &str, what: &'static str) -> Result<(u32, u32), UserError> {
    let host = resolve_in_root(rootfs, Path::new(path))?;
    let meta = std::fs::metadata(&host).map_err(|source| UserError::PathOwner {
        what,
        path: path.to_string(),
        source,
    })?;
    Ok((meta.uid(), meta.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        broken line\n\
        user1:x:1000:1001:User One:/home/user1:/bin/ash\n\
        42:x:4242:4242::/:/bin/false\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:user1,other\n\nbad:x:notanumber:\n";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        dir
    }

    #[test]
    fn parses_passwd_and_group() {
        let p = parse_passwd(PASSWD);
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].name, "user1");
        assert_eq!((p[1].uid, p[1].gid), (1000, 1001));
        assert_eq!(p[1].home, "/home/user1");
        let g = parse_group(GROUP);
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].members, vec!["user1", "other"]);
    }

    #[test]
    fn resolves_names_ids_and_paths() {
        let r = rootfs();
        let r = r.path();
        assert_eq!(resolve_user(r, "user1").unwrap(), 1000);
        assert_eq!(resolve_user(r, "1234").unwrap(), 1234);
        // A name that looks numeric is looked up first, as appc says.
        assert_eq!(resolve_user(r, "42").unwrap(), 4242);
        assert_eq!(resolve_group(r, "staff").unwrap(), 50);
        assert_eq!(resolve_group(r, "7").unwrap(), 7);
        assert!(matches!(
            resolve_user(r, "nobody"),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_group(r, "nogroup"),
            Err(UserError::UnknownGroup(_))
        ));
        assert!(matches!(resolve_user(r, ""), Err(UserError::EmptyUser)));

        std::fs::write(r.join("owned"), "").unwrap();
        nix::unistd::chown(
            &r.join("owned"),
            Some(nix::unistd::Uid::from_raw(nix::unistd::getuid().as_raw())),
            None,
        )
        .unwrap();
        let me = nix::unistd::getuid().as_raw();
        assert_eq!(resolve_user(r, "/owned").unwrap(), me);
        assert!(matches!(
            resolve_user(r, "/missing"),
            Err(UserError::PathOwner { .. })
        ));
    }

    #[test]
    fn missing_databases_allow_numeric_ids() {
        let r = tempfile::tempdir().unwrap();
        assert_eq!(resolve_user(r.path(), "0").unwrap(), 0);
        assert!(resolve_user(r.path(), "root").is_err());
    }

    #[test]
    fn credentials_use_manifest_supplementary_gids() {
        let r = rootfs();
        let app = App {
            user: "user1".into(),
            group: "staff".into(),
            supplementary_gids: vec![5, 6],
            ..Default::default()
        };
        assert_eq!(
            resolve_credentials(r.path(), &app).unwrap(),
            Credentials {
                uid: 1000,
                gid: 50,
                supplementary_gids: vec![5, 6]
            }
        );
    }
}
