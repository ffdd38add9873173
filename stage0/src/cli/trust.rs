//! `rkt trust [--prefix=P | --root] [--skip-fingerprint-review] KEYFILE…`:
//! adds public keys to the local keystore, after showing each key's
//! fingerprint and identities for review (rkt's prompt).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{ArgAction, Args};
use stage0::trust::{spaced_fingerprint, Keystore, Scope};

use super::Context;

#[derive(Args, Debug, Clone)]
pub struct TrustArgs {
    /// prefix to limit trust to
    #[arg(long, default_value = "", value_name = "PREFIX")]
    prefix: String,
    /// add root key from filesystem without a prefix
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    root: bool,
    /// accept key without fingerprint confirmation
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    skip_fingerprint_review: bool,
    /// allow HTTP use for key discovery and/or retrieval
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    insecure_allow_http: bool,
    /// public key files to trust
    #[arg(value_name = "PUBKEY")]
    keys: Vec<String>,
}

pub fn run(ctx: &Context, args: TrustArgs) -> Result<i32> {
    let scope = match (args.prefix.is_empty(), args.root) {
        (false, true) => bail!("--root and --prefix are mutually exclusive"),
        (true, false) if args.keys.is_empty() => {
            bail!("give --prefix=PREFIX (and optionally key files), or --root with key files")
        }
        (true, false) => bail!(
            "--prefix or --root is required with key files: trusting a key for every image name is implicit unbounded trust"
        ),
        (true, true) => Scope::Root,
        (false, false) => Scope::prefix(&args.prefix)?,
    };
    // Keys over plain http only with --insecure-allow-http, or the global
    // --insecure-options=pubkey (or http); certificates as those say.
    let mut insecure = ctx.insecure;
    insecure.http |= args.insecure_allow_http || ctx.insecure.pubkey;
    let keys = if args.keys.is_empty() {
        let Scope::Prefix(prefix) = &scope else {
            bail!("--root needs key files: root keys are not discovered");
        };
        let urls = stage0::fetch::discover_key_urls(&insecure, prefix)?;
        println!("pubkey: prefix: {prefix:?}");
        urls
    } else {
        args.keys.clone()
    };
    let keystore = Keystore::new(&ctx.system_config, &ctx.local_config);
    let mut stdin = std::io::stdin().lock();
    for key in &keys {
        let bytes = if key.contains("://") {
            stage0::fetch::download_key(&insecure, key)?
        } else {
            std::fs::read(Path::new(key)).with_context(|| format!("cannot read key file {key}"))?
        };
        let cert = stage0::trust::parse_key(&bytes, &format!("key file {key}"))?;
        let fingerprint = stage0::trust::fingerprint_of(&cert);
        if let Some(why) = stage0::trust::unusable_now(&cert) {
            bail!("key {fingerprint} in {key} cannot be trusted: {why}; get a current key from its owner");
        }
        match &scope {
            Scope::Root => println!("Prefix: ROOT KEY (matches all names)"),
            Scope::Prefix(p) => println!("Prefix: {p:?}"),
        }
        println!("Key: {key:?}");
        println!(
            "GPG key fingerprint is: {}",
            spaced_fingerprint(&fingerprint)
        );
        for sub in cert.keys().subkeys() {
            println!(
                "    Subkey fingerprint: {}",
                spaced_fingerprint(&sub.key().fingerprint().to_hex())
            );
        }
        for uid in cert.userids() {
            println!("\t{}", String::from_utf8_lossy(uid.userid().value()));
        }
        let how = if args.skip_fingerprint_review {
            "without fingerprint review"
        } else if review(&mut stdin)? {
            "after fingerprint review"
        } else {
            println!("Not trusting {key:?}");
            continue;
        };
        let shown = match &scope {
            Scope::Root => String::new(),
            Scope::Prefix(p) => p.clone(),
        };
        println!("Trusting {key:?} for prefix {shown:?} {how}.");
        let stored: PathBuf = keystore.store(&scope, &cert)?;
        match &scope {
            Scope::Root => println!("Added root key at {:?}", stored.display().to_string()),
            Scope::Prefix(p) => println!(
                "Added key for prefix {p:?} at {:?}",
                stored.display().to_string()
            ),
        }
    }
    Ok(0)
}

/// rkt's `Are you sure you want to trust this key (yes/no)?`, on a terminal.
fn review(stdin: &mut impl BufRead) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("reviewing the key's fingerprint needs a terminal; check the fingerprint above and pass --skip-fingerprint-review to trust it without a prompt");
    }
    loop {
        print!("Are you sure you want to trust this key (yes/no)? ");
        std::io::stdout().flush().ok();
        let mut line = String::new();
        if stdin.read_line(&mut line)? == 0 {
            bail!("no answer on standard input; the key was not trusted");
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "yes" => return Ok(true),
            "no" => return Ok(false),
            _ => println!("Please enter 'yes' or 'no'"),
        }
    }
}
