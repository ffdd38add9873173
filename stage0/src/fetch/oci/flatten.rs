//! Layers to one ACI in a single pass: the layers are read top (newest)
//! first, and an entry goes into the ACI unless a newer layer already gave
//! its path, deleted it (a `.wh.<name>` whiteout), made a parent opaque
//! (`.wh..wh..opq`) or replaced a parent with a non-directory. Nothing is
//! unpacked to disk on the way; the store's import renders the result.
//!
//! An entry is written as the layer had it, under `rootfs/`, extended
//! attributes included; device nodes are left out (the pod's /dev is
//! stage1's), as are whiteouts. The manifest goes last, once the layers
//! have shown what it needs (the image's /etc/passwd).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use tar::{EntryType, Header};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FlattenError {
    #[error("layer {layer}: {source}")]
    Io {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer}: entry {path:?} {why}; the image is refused")]
    Unsafe {
        layer: String,
        path: String,
        why: &'static str,
    },
    #[error("writing the converted image: {0}")]
    Write(#[source] io::Error),
}

/// Largest /etc/passwd read for the app's group.
const MAX_PASSWD: u64 = 1 << 20;
const PASSWD: &str = "etc/passwd";

pub struct Flattener<W: Write> {
    out: tar::Builder<W>,
    /// Every path a newer layer wrote, and whether it is a directory.
    emitted: HashMap<String, bool>,
    /// Paths newer layers deleted, with everything below them.
    whiteouts: HashSet<String>,
    /// Directories whose older contents newer layers hid.
    opaque: HashSet<String>,
    /// Parents of what newer layers wrote: directories, whether or not a
    /// newer layer has an entry for them (an older symlink there is gone).
    implied_dirs: HashSet<String>,
    /// Where an older layer's non-directory replaced what was below it
    /// (and a newer layer then made a directory): nothing older below.
    blocked: HashSet<String>,
    /// The image's /etc/passwd, if it has one.
    passwd: Option<Vec<u8>>,
    pub devices_skipped: usize,
}

/// A layer's entries, as one layer's pass found them.
#[derive(Default)]
struct LayerChanges {
    emitted: Vec<(String, bool)>,
    whiteouts: Vec<String>,
    opaque: Vec<String>,
    /// Hard links whose target a newer layer replaced: (link, target).
    orphan_links: Vec<(String, String, Header)>,
    /// Regular files of this layer that newer layers hid.
    hidden_files: HashSet<String>,
    /// Non-directories of this layer that newer layers hid.
    blocked: Vec<String>,
}

impl<W: Write> Flattener<W> {
    pub fn new(out: W) -> Result<Self, FlattenError> {
        let mut out = tar::Builder::new(out);
        let mut root = Header::new_gnu();
        root.set_entry_type(EntryType::Directory);
        root.set_mode(0o755);
        root.set_size(0);
        root.set_mtime(0);
        out.append_data(&mut root, "rootfs", io::empty())
            .map_err(FlattenError::Write)?;
        Ok(Flattener {
            out,
            emitted: HashMap::new(),
            whiteouts: HashSet::new(),
            opaque: HashSet::new(),
            implied_dirs: HashSet::new(),
            blocked: HashSet::new(),
            passwd: None,
            devices_skipped: 0,
        })
    }

    /// The image's /etc/passwd, as the layers so far left it.
    pub fn passwd(&self) -> Option<&[u8]> {
        self.passwd.as_deref()
    }

    /// Adds the next older layer; `open` gives its uncompressed tar (again,
    /// if a hard link needs a file a newer layer replaced).
    pub fn add_layer<'l>(
        &mut self,
        name: &str,
        open: &dyn Fn() -> io::Result<Box<dyn Read + 'l>>,
    ) -> Result<(), FlattenError> {
        let io_err = |source| FlattenError::Io {
            layer: name.to_string(),
            source,
        };
        let mut changes = LayerChanges::default();
        let mut archive = tar::Archive::new(open().map_err(io_err)?);
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            self.take_entry(name, &mut entry, &mut changes)?;
        }
        // To the end: a verifying reader checks the digest there.
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(io_err)?;
        if !changes.orphan_links.is_empty() {
            self.write_orphan_links(name, open, &mut changes)?;
        }
        for (path, is_dir) in changes.emitted {
            let mut ancestor = path.as_str();
            while let Some((parent, _)) = ancestor.rsplit_once('/') {
                if !self.implied_dirs.insert(parent.to_string()) {
                    break;
                }
                ancestor = parent;
            }
            self.emitted.insert(path, is_dir);
        }
        self.blocked.extend(changes.blocked);
        self.whiteouts.extend(changes.whiteouts);
        self.opaque.extend(changes.opaque);
        Ok(())
    }

    fn take_entry<R: Read>(
        &mut self,
        layer: &str,
        entry: &mut tar::Entry<R>,
        changes: &mut LayerChanges,
    ) -> Result<(), FlattenError> {
        let unsafe_entry = |path: &str, why| FlattenError::Unsafe {
            layer: layer.to_string(),
            path: path.to_string(),
            why,
        };
        // Archive-wide PAX settings (git archive writes one), not a file.
        if entry.header().entry_type() == EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let Some(path) = normalize(&raw) else {
            return Err(unsafe_entry(&raw, "leaves the image (\"..\")"));
        };
        if path.is_empty() {
            return Ok(());
        }
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", &path));
        if file == ".wh..wh..opq" {
            changes.opaque.push(dir.to_string());
            return Ok(());
        }
        if let Some(deleted) = file.strip_prefix(".wh.") {
            // `.wh..wh.*` other than the opaque marker: aufs bookkeeping.
            if !deleted.starts_with(".wh.") {
                changes.whiteouts.push(join(dir, deleted));
            }
            return Ok(());
        }
        let kind = entry.header().entry_type();
        let is_dir = kind.is_dir();
        if self.hidden(&path, is_dir) {
            if !is_dir {
                changes.blocked.push(path.clone());
            }
            if kind.is_file() || kind == EntryType::Continuous {
                changes.hidden_files.insert(path);
            }
            return Ok(());
        }
        let out_path = format!("rootfs/{path}");
        let mut header = entry.header().clone();
        match kind {
            EntryType::Block | EntryType::Char => {
                self.devices_skipped += 1;
                return Ok(());
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let Some(target) = normalize(&target).filter(|t| !t.is_empty()) else {
                    return Err(unsafe_entry(&path, "is a hard link out of the image"));
                };
                header.set_size(0);
                if changes.hidden_files.contains(&target) {
                    changes.orphan_links.push((path.clone(), target, header));
                    changes.emitted.push((path, false));
                    return Ok(());
                }
                self.copy_xattrs(entry)?;
                self.out
                    .append_link(&mut header, &out_path, format!("rootfs/{target}"))
                    .map_err(FlattenError::Write)?;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let target = String::from_utf8_lossy(&target).into_owned();
                header.set_size(0);
                self.copy_xattrs(entry)?;
                self.out
                    .append_link(&mut header, &out_path, target)
                    .map_err(FlattenError::Write)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                header.set_entry_type(EntryType::Regular);
                // The size tar read (a PAX `size` for files of 8 GiB and
                // more), not the header's own field, which may differ.
                header.set_size(entry.size());
                self.copy_xattrs(entry)?;
                if path == PASSWD && entry.size() <= MAX_PASSWD {
                    let mut bytes = Vec::with_capacity(entry.size() as usize);
                    entry
                        .read_to_end(&mut bytes)
                        .map_err(|source| FlattenError::Io {
                            layer: layer.to_string(),
                            source,
                        })?;
                    self.out
                        .append_data(&mut header, &out_path, bytes.as_slice())
                        .map_err(FlattenError::Write)?;
                    self.passwd = Some(bytes);
                } else {
                    self.out
                        .append_data(&mut header, &out_path, entry)
                        .map_err(FlattenError::Write)?;
                }
            }
            EntryType::Directory | EntryType::Fifo => {
                header.set_size(0);
                self.copy_xattrs(entry)?;
                self.out
                    .append_data(&mut header, &out_path, io::empty())
                    .map_err(FlattenError::Write)?;
            }
            _ => {
                return Err(unsafe_entry(
                    &path,
                    "has a tar entry type this importer does not know",
                ))
            }
        }
        changes.emitted.push((path, is_dir));
        Ok(())
    }

    /// Whether newer layers hid `path` (a directory when `is_dir`).
    fn hidden(&self, path: &str, is_dir: bool) -> bool {
        if self.emitted.contains_key(path)
            || self.whiteouts.contains(path)
            || (!is_dir && self.implied_dirs.contains(path))
            // An opaque root: nothing older shows.
            || self.opaque.contains("")
        {
            return true;
        }
        let mut ancestor = path;
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if self.whiteouts.contains(parent)
                || self.opaque.contains(parent)
                || self.blocked.contains(parent)
                || self.emitted.get(parent) == Some(&false)
            {
                return true;
            }
            ancestor = parent;
        }
        false
    }

    /// Hard links to files a newer layer replaced keep the content they
    /// had: the first becomes a copy of that file (read again from the
    /// layer), the others links to it.
    fn write_orphan_links<'l>(
        &mut self,
        layer: &str,
        open: &dyn Fn() -> io::Result<Box<dyn Read + 'l>>,
        changes: &mut LayerChanges,
    ) -> Result<(), FlattenError> {
        let io_err = |source| FlattenError::Io {
            layer: layer.to_string(),
            source,
        };
        let wanted: HashSet<&str> = changes
            .orphan_links
            .iter()
            .map(|(_, t, _)| t.as_str())
            .collect();
        // target → the link that now holds its content
        let mut copies: HashMap<String, String> = HashMap::new();
        let mut archive = tar::Archive::new(open().map_err(io_err)?);
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = normalize(&raw) else {
                continue;
            };
            if !wanted.contains(path.as_str()) || copies.contains_key(&path) {
                continue;
            }
            let kind = entry.header().entry_type();
            if !(kind.is_file() || kind == EntryType::Continuous) {
                continue;
            }
            let Some((link, _, _)) = changes.orphan_links.iter().find(|(_, t, _)| *t == path)
            else {
                continue;
            };
            let mut header = entry.header().clone();
            header.set_entry_type(EntryType::Regular);
            self.out
                .append_data(&mut header, format!("rootfs/{link}"), &mut entry)
                .map_err(FlattenError::Write)?;
            copies.insert(path, link.clone());
        }
        for (link, target, mut header) in std::mem::take(&mut changes.orphan_links) {
            let Some(copy) = copies.get(&target) else {
                return Err(FlattenError::Unsafe {
                    layer: layer.to_string(),
                    path: link,
                    why: "is a hard link to a file the layer does not hold",
                });
            };
            if *copy == link {
                continue;
            }
            self.out
                .append_link(
                    &mut header,
                    format!("rootfs/{link}"),
                    format!("rootfs/{copy}"),
                )
                .map_err(FlattenError::Write)?;
        }
        Ok(())
    }

    /// Extended attributes (`SCHILY.xattr.*`, file capabilities among
    /// them) go along with the entry.
    fn copy_xattrs<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), FlattenError> {
        let Ok(Some(extensions)) = entry.pax_extensions() else {
            return Ok(());
        };
        let xattrs: Vec<(String, Vec<u8>)> = extensions
            .flatten()
            .filter_map(|e| {
                let key = e.key().ok()?;
                key.starts_with("SCHILY.xattr.")
                    .then(|| (key.to_string(), e.value_bytes().to_vec()))
            })
            .collect();
        if xattrs.is_empty() {
            return Ok(());
        }
        self.out
            .append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(FlattenError::Write)
    }

    /// Ends the ACI with its manifest; gives back the writer.
    pub fn finish(mut self, manifest: &[u8]) -> Result<W, FlattenError> {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(manifest.len() as u64);
        header.set_mtime(0);
        self.out
            .append_data(&mut header, "manifest", manifest)
            .map_err(FlattenError::Write)?;
        self.out.into_inner().map_err(FlattenError::Write)
    }
}

/// A layer path relative to the image root (`./a//b/` → `a/b`); `None`
/// when it climbs out with `..`.
fn normalize(raw: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests;
