//! Command-line flags, Go-`flag` style: `--name`, `--name=value` or
//! `--name value` (one or two leading dashes).

/// Everything the checks need, filled from the command line.
#[derive(Debug, Default)]
pub struct Opts {
    pub print_msg: Option<String>,
    pub print_env: Vec<String>,
    pub print_exec: bool,
    pub print_cwd: bool,
    pub print_pid: bool,
    pub print_user: bool,
    pub print_groups: bool,
    pub print_hostname: bool,
    pub print_caps_pid: Option<u32>,
    pub print_seccomp: bool,
    pub print_no_new_privs: bool,
    pub print_memorylimit: bool,
    pub print_cpuquota: bool,
    pub print_cpushares: bool,
    pub print_mounts: bool,
    /// `net`, `ipc`, `mnt`, `pid`, `uts` in the order asked.
    pub print_ns: Vec<&'static str>,
    pub print_ifaces: bool,
    pub read_file: bool,
    pub write_file: bool,
    pub stat_file: bool,
    pub file_name: Option<String>,
    pub content: Option<String>,
    pub check_tty: bool,
    pub get_http: Option<String>,
    pub print_app_annotation: Option<String>,
    pub serve_http: Option<String>,
    /// Echo every UDP datagram to its sender (until the serve timeout).
    pub serve_udp_echo: Option<String>,
    pub serve_http_timeout: u64,
    pub sleep: u64,
    pub exit_code: u8,
    pub read_stdin: bool,
}

impl Opts {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Opts, String> {
        let mut o = Opts {
            serve_http_timeout: 30,
            ..Opts::default()
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(format!(
                    "unexpected argument {arg:?}; flags look like --print-msg=hi"
                ));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            // Only flags that take a value consume the next argument.
            let mut value = || -> Result<String, String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => args
                        .next()
                        .ok_or_else(|| format!("flag --{name} needs a value (--{name}=VALUE)")),
                }
            };
            match name {
                "print-msg" => o.print_msg = Some(value()?),
                "print-env" => o.print_env.push(value()?),
                "print-caps-pid" => o.print_caps_pid = Some(number(name, &value()?)?),
                "file-name" => o.file_name = Some(value()?),
                "content" => o.content = Some(value()?),
                "get-http" => o.get_http = Some(value()?),
                "print-app-annotation" => o.print_app_annotation = Some(value()?),
                "serve-http" => o.serve_http = Some(value()?),
                "serve-udp-echo" => o.serve_udp_echo = Some(value()?),
                "serve-http-timeout" => o.serve_http_timeout = number(name, &value()?)?,
                "sleep" => o.sleep = number(name, &value()?)?,
                "exit-code" => o.exit_code = number(name, &value()?)?,
                _ => {
                    let on = match inline.as_deref() {
                        None | Some("true") | Some("1") => true,
                        Some("false") | Some("0") => false,
                        Some(v) => return Err(format!("flag --{name} is a switch, not {v:?}")),
                    };
                    match ns_flag(name) {
                        Some(ns) if on => o.print_ns.push(ns),
                        Some(_) => {}
                        None => *o.switch(name)? = on,
                    }
                }
            }
        }
        Ok(o)
    }

    fn switch(&mut self, name: &str) -> Result<&mut bool, String> {
        Ok(match name {
            "print-exec" => &mut self.print_exec,
            "print-cwd" => &mut self.print_cwd,
            "print-pid" => &mut self.print_pid,
            "print-user" => &mut self.print_user,
            "print-groups" => &mut self.print_groups,
            "print-hostname" => &mut self.print_hostname,
            "print-seccomp" => &mut self.print_seccomp,
            "print-no-new-privs" => &mut self.print_no_new_privs,
            "print-memorylimit" => &mut self.print_memorylimit,
            "print-cpuquota" => &mut self.print_cpuquota,
            "print-cpushares" => &mut self.print_cpushares,
            "print-mounts" => &mut self.print_mounts,
            "print-ifaces" => &mut self.print_ifaces,
            "read-file" => &mut self.read_file,
            "write-file" => &mut self.write_file,
            "stat-file" => &mut self.stat_file,
            "check-tty" => &mut self.check_tty,
            "read-stdin" => &mut self.read_stdin,
            _ => return Err(format!("unknown flag --{name}")),
        })
    }

    /// `--file-name`, else `$FILE`.
    pub fn file_name(&self) -> Result<String, String> {
        self.file_name
            .clone()
            .or_else(|| std::env::var("FILE").ok())
            .ok_or_else(|| "no file given: pass --file-name=PATH or set FILE".to_string())
    }

    /// `--content`, else `$CONTENT`, else empty.
    pub fn content(&self) -> String {
        self.content
            .clone()
            .or_else(|| std::env::var("CONTENT").ok())
            .unwrap_or_default()
    }
}

/// The `/proc/self/ns` entry a `--print-*ns` flag asks for.
fn ns_flag(name: &str) -> Option<&'static str> {
    match name {
        "print-netns" => Some("net"),
        "print-ipcns" => Some("ipc"),
        "print-mountns" => Some("mnt"),
        "print-pidns" => Some("pid"),
        "print-utsns" => Some("uts"),
        _ => None,
    }
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("flag --{name} needs a number, got {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Opts, String> {
        Opts::parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flag_forms() {
        let o = parse(&[
            "--print-msg=hello world",
            "--exit-code",
            "3",
            "-print-user",
            "--print-netns",
            "--print-pidns",
            "--print-env=A",
            "--print-env=B",
            "--check-tty=false",
        ])
        .unwrap();
        assert_eq!(o.print_msg.as_deref(), Some("hello world"));
        assert_eq!(o.exit_code, 3);
        assert!(o.print_user);
        assert_eq!(o.print_ns, ["net", "pid"]);
        assert_eq!(o.print_env, ["A", "B"]);
        assert!(!o.check_tty);
        assert_eq!(o.serve_http_timeout, 30);
    }

    #[test]
    fn errors() {
        assert!(parse(&["--nope"]).unwrap_err().contains("unknown flag"));
        assert!(parse(&["--sleep=x"]).unwrap_err().contains("number"));
        assert!(parse(&["--print-msg"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&["stray"]).is_err());
    }
}
