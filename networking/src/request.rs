//! The `--net` list (rkt's `NetList`): comma-separated `name[:CNI_ARGS]`,
//! with the special names `host`, `none`, `all`, `default` and
//! `default-restricted`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("--net={0:?}: empty network name; pass names separated by commas")]
    Empty(String),
    #[error("--net: network {0:?} is given twice; name each network once")]
    Duplicate(String),
    #[error("--net: {0:?} takes no CNI_ARGS; drop the \":...\" part")]
    NoArgs(String),
    #[error("--net: {0:?} has more than one ':'; use name:ARG1=V1;ARG2=V2")]
    TooManyColons(String),
    #[error("--net: {0:?} cannot be combined with other networks; pass it alone")]
    Alone(String),
}

/// One requested network and its CNI_ARGS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEntry {
    pub name: String,
    pub args: Option<String>,
}

/// What `--net` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetRequest {
    /// The host's network namespace; nothing is set up.
    Host,
    /// A new network namespace with loopback only.
    None,
    /// Every configured network (user ones and the built-in `default`).
    All,
    /// These networks, in the order given.
    Named(Vec<NetEntry>),
}

impl NetRequest {
    /// Parses the comma list as stage0 passes it to stage1.
    pub fn parse(list: &str) -> Result<Self, RequestError> {
        let mut entries: Vec<NetEntry> = Vec::new();
        for item in list.split(',') {
            let (name, args) = match item.split_once(':') {
                Some((_, rest)) if rest.contains(':') => {
                    return Err(RequestError::TooManyColons(item.to_string()))
                }
                Some((name, args)) => (name, Some(args.to_string())),
                None => (item, None),
            };
            if name.is_empty() {
                return Err(RequestError::Empty(list.to_string()));
            }
            if args.is_some() && matches!(name, "host" | "all" | "none") {
                return Err(RequestError::NoArgs(name.to_string()));
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(RequestError::Duplicate(name.to_string()));
            }
            entries.push(NetEntry {
                name: name.to_string(),
                args,
            });
        }
        let special = entries
            .iter()
            .find(|e| matches!(e.name.as_str(), "host" | "none" | "all"));
        match (special, entries.len()) {
            (Some(e), 1) => Ok(match e.name.as_str() {
                "host" => NetRequest::Host,
                "none" => NetRequest::None,
                _ => NetRequest::All,
            }),
            (Some(e), _) => Err(RequestError::Alone(e.name.clone())),
            (None, _) => Ok(NetRequest::Named(entries)),
        }
    }

    /// Whether the network `name` is wanted.
    pub fn wants(&self, name: &str) -> bool {
        match self {
            NetRequest::All => true,
            NetRequest::Named(entries) => entries.iter().any(|e| e.name == name),
            NetRequest::Host | NetRequest::None => false,
        }
    }

    /// The CNI_ARGS given for `name`.
    pub fn args(&self, name: &str) -> Option<&str> {
        match self {
            NetRequest::Named(entries) => entries
                .iter()
                .find(|e| e.name == name)
                .and_then(|e| e.args.as_deref()),
            _ => None,
        }
    }

    /// The names asked for explicitly (empty for `all`, `host`, `none`).
    pub fn names(&self) -> Vec<&str> {
        match self {
            NetRequest::Named(entries) => entries.iter().map(|e| e.name.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_and_names() {
        assert_eq!(NetRequest::parse("host").unwrap(), NetRequest::Host);
        assert_eq!(NetRequest::parse("none").unwrap(), NetRequest::None);
        assert_eq!(NetRequest::parse("all").unwrap(), NetRequest::All);
        let r = NetRequest::parse("default,mynet:IP=10.1.2.3;FOO=bar").unwrap();
        assert_eq!(r.names(), ["default", "mynet"]);
        assert_eq!(r.args("mynet"), Some("IP=10.1.2.3;FOO=bar"));
        assert_eq!(r.args("default"), None);
        assert!(r.wants("default") && !r.wants("other"));
        assert!(NetRequest::All.wants("anything"));
    }

    #[test]
    fn rkt_refusals() {
        use RequestError::*;
        assert_eq!(NetRequest::parse("a,a").unwrap_err(), Duplicate("a".into()));
        assert_eq!(
            NetRequest::parse("host:X=1").unwrap_err(),
            NoArgs("host".into())
        );
        assert_eq!(
            NetRequest::parse("a:b:c").unwrap_err(),
            TooManyColons("a:b:c".into())
        );
        assert_eq!(NetRequest::parse("a,,b").unwrap_err(), Empty("a,,b".into()));
        assert_eq!(
            NetRequest::parse("host,default").unwrap_err(),
            Alone("host".into())
        );
    }
}
