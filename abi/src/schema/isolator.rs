//! Isolators: `{name, value}` pairs whose value's shape depends on the name.
//!
//! The manifest keeps the raw JSON value (so unknown isolators round-trip
//! untouched); [`Isolator::typed`] gives the validated view of the known
//! names of appc §6.7 and [`Isolator::from_typed`] builds the JSON rkt writes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::quantity::{
    format_quantity_bytes, format_quantity_millis, parse_quantity_bytes, parse_quantity_millis,
};
use super::{AcIdentifier, SchemaError};

/// An isolator as it appears in a manifest. The value is kept as raw JSON so
/// that unknown isolators round-trip; typed views are derived from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isolator {
    pub name: AcIdentifier,
    pub value: serde_json::Value,
}

pub const RESOURCE_CPU: &str = "resource/cpu";
pub const RESOURCE_MEMORY: &str = "resource/memory";
pub const RESOURCE_BLOCK_BANDWIDTH: &str = "resource/block-bandwidth";
pub const RESOURCE_BLOCK_IOPS: &str = "resource/block-iops";
pub const RESOURCE_NETWORK_BANDWIDTH: &str = "resource/network-bandwidth";
pub const CAPABILITIES_RETAIN_SET: &str = "os/linux/capabilities-retain-set";
pub const CAPABILITIES_REMOVE_SET: &str = "os/linux/capabilities-remove-set";
pub const NO_NEW_PRIVILEGES: &str = "os/linux/no-new-privileges";
pub const SECCOMP_RETAIN_SET: &str = "os/linux/seccomp-retain-set";
pub const SECCOMP_REMOVE_SET: &str = "os/linux/seccomp-remove-set";
pub const SELINUX_CONTEXT: &str = "os/linux/selinux-context";
pub const APPARMOR_PROFILE: &str = "os/linux/apparmor-profile";
pub const OOM_SCORE_ADJ: &str = "os/linux/oom-score-adj";
pub const CPU_SHARES: &str = "os/linux/cpu-shares";
pub const UNIX_SYSCTL: &str = "os/unix/sysctl";

/// Isolator names that may appear several times in one list (appc lets
/// resource and capability isolators repeat; every other known one is single).
const MULTIPLE_ALLOWED: &[&str] = &[
    RESOURCE_CPU,
    RESOURCE_MEMORY,
    RESOURCE_BLOCK_BANDWIDTH,
    RESOURCE_BLOCK_IOPS,
    RESOURCE_NETWORK_BANDWIDTH,
    CAPABILITIES_RETAIN_SET,
    CAPABILITIES_REMOVE_SET,
];

/// The known isolator names.
pub const KNOWN_ISOLATORS: &[&str] = &[
    RESOURCE_CPU,
    RESOURCE_MEMORY,
    RESOURCE_BLOCK_BANDWIDTH,
    RESOURCE_BLOCK_IOPS,
    RESOURCE_NETWORK_BANDWIDTH,
    CAPABILITIES_RETAIN_SET,
    CAPABILITIES_REMOVE_SET,
    NO_NEW_PRIVILEGES,
    SECCOMP_RETAIN_SET,
    SECCOMP_REMOVE_SET,
    SELINUX_CONTEXT,
    APPARMOR_PROFILE,
    OOM_SCORE_ADJ,
    CPU_SHARES,
    UNIX_SYSCTL,
];

/// Range of `os/linux/oom-score-adj`.
pub const OOM_SCORE_ADJ_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;
/// Range of `os/linux/cpu-shares` (cgroup v1 cpu.shares).
pub const CPU_SHARES_RANGE: std::ops::RangeInclusive<u64> = 2..=262_144;

/// Validated value of a known isolator. Resource quantities are integers in
/// base units: bytes (memory, bandwidth), millicores (cpu), operations (iops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsolatorValue {
    /// `request` defaults to `limit` when absent (appc).
    ResourceCpu {
        request: Option<u64>,
        limit: Option<u64>,
    },
    /// `request` defaults to `limit` when absent (appc).
    ResourceMemory {
        request: Option<u64>,
        limit: Option<u64>,
    },
    /// Bytes per second over all block devices.
    BlockBandwidth {
        limit: u64,
    },
    /// Operations per second over all block devices.
    BlockIops {
        limit: u64,
    },
    /// Bytes per second over all non-loopback interfaces.
    NetworkBandwidth {
        limit: u64,
    },
    CapabilitiesRetainSet(Vec<String>),
    CapabilitiesRemoveSet(Vec<String>),
    /// `errno` is `None` when blocked calls should raise SIGSYS.
    SeccompRetainSet {
        set: Vec<String>,
        errno: Option<String>,
    },
    SeccompRemoveSet {
        set: Vec<String>,
        errno: Option<String>,
    },
    NoNewPrivileges(bool),
    OomScoreAdj(i32),
    CpuShares(u64),
    SelinuxContext {
        user: String,
        role: String,
        r#type: String,
        level: String,
    },
    ApparmorProfile(String),
    UnixSysctl(BTreeMap<String, String>),
    /// A name this implementation does not know; kept raw.
    Unknown {
        name: String,
        value: Value,
    },
}

impl IsolatorValue {
    /// The appc isolator name of this value.
    pub fn name(&self) -> &str {
        match self {
            IsolatorValue::ResourceCpu { .. } => RESOURCE_CPU,
            IsolatorValue::ResourceMemory { .. } => RESOURCE_MEMORY,
            IsolatorValue::BlockBandwidth { .. } => RESOURCE_BLOCK_BANDWIDTH,
            IsolatorValue::BlockIops { .. } => RESOURCE_BLOCK_IOPS,
            IsolatorValue::NetworkBandwidth { .. } => RESOURCE_NETWORK_BANDWIDTH,
            IsolatorValue::CapabilitiesRetainSet(_) => CAPABILITIES_RETAIN_SET,
            IsolatorValue::CapabilitiesRemoveSet(_) => CAPABILITIES_REMOVE_SET,
            IsolatorValue::SeccompRetainSet { .. } => SECCOMP_RETAIN_SET,
            IsolatorValue::SeccompRemoveSet { .. } => SECCOMP_REMOVE_SET,
            IsolatorValue::NoNewPrivileges(_) => NO_NEW_PRIVILEGES,
            IsolatorValue::OomScoreAdj(_) => OOM_SCORE_ADJ,
            IsolatorValue::CpuShares(_) => CPU_SHARES,
            IsolatorValue::SelinuxContext { .. } => SELINUX_CONTEXT,
            IsolatorValue::ApparmorProfile(_) => APPARMOR_PROFILE,
            IsolatorValue::UnixSysctl(_) => UNIX_SYSCTL,
            IsolatorValue::Unknown { name, .. } => name,
        }
    }

    /// The JSON `value` rkt writes for this isolator (not validated; see
    /// [`Isolator::from_typed`]).
    fn to_json(&self) -> Value {
        fn resource(request: Option<String>, limit: Option<String>, default: bool) -> Value {
            let mut m = Map::new();
            if default {
                m.insert("default".into(), Value::Bool(true));
            }
            if let Some(r) = request {
                m.insert("request".into(), Value::String(r));
            }
            if let Some(l) = limit {
                m.insert("limit".into(), Value::String(l));
            }
            Value::Object(m)
        }
        fn seccomp(set: &[String], errno: &Option<String>) -> Value {
            let mut m = Map::new();
            m.insert("set".into(), json!(set));
            if let Some(e) = errno {
                m.insert("errno".into(), Value::String(e.clone()));
            }
            Value::Object(m)
        }
        match self {
            IsolatorValue::ResourceCpu { request, limit } => resource(
                request.map(format_quantity_millis),
                limit.map(format_quantity_millis),
                false,
            ),
            IsolatorValue::ResourceMemory { request, limit } => resource(
                request.map(format_quantity_bytes),
                limit.map(format_quantity_bytes),
                false,
            ),
            IsolatorValue::BlockBandwidth { limit }
            | IsolatorValue::BlockIops { limit }
            | IsolatorValue::NetworkBandwidth { limit } => {
                resource(None, Some(format_quantity_bytes(*limit)), true)
            }
            IsolatorValue::CapabilitiesRetainSet(set)
            | IsolatorValue::CapabilitiesRemoveSet(set) => json!({ "set": set }),
            IsolatorValue::SeccompRetainSet { set, errno }
            | IsolatorValue::SeccompRemoveSet { set, errno } => seccomp(set, errno),
            IsolatorValue::NoNewPrivileges(b) => Value::Bool(*b),
            IsolatorValue::OomScoreAdj(n) => json!(n),
            IsolatorValue::CpuShares(n) => json!(n),
            IsolatorValue::SelinuxContext {
                user,
                role,
                r#type,
                level,
            } => json!({ "user": user, "role": role, "type": r#type, "level": level }),
            IsolatorValue::ApparmorProfile(p) => json!({ "profile": p }),
            IsolatorValue::UnixSysctl(map) => json!(map),
            IsolatorValue::Unknown { value, .. } => value.clone(),
        }
    }
}

impl Isolator {
    /// The validated, typed view of this isolator's value.
    pub fn typed(&self) -> Result<IsolatorValue, SchemaError> {
        let name = self.name.as_str();
        let v = &self.value;
        let value = match name {
            RESOURCE_CPU | RESOURCE_MEMORY => {
                let obj = object(name, v)?;
                if bool_field(name, obj, "default")? {
                    return Err(invalid(name, "\"default\" must be false (or absent)"));
                }
                let parse = if name == RESOURCE_CPU {
                    parse_quantity_millis
                } else {
                    parse_quantity_bytes
                };
                let limit = quantity_field(name, obj, "limit", parse)?;
                // Go does not check request <= limit; neither do we.
                let request = quantity_field(name, obj, "request", parse)?.or(limit);
                if name == RESOURCE_CPU {
                    IsolatorValue::ResourceCpu { request, limit }
                } else {
                    IsolatorValue::ResourceMemory { request, limit }
                }
            }
            RESOURCE_BLOCK_BANDWIDTH | RESOURCE_BLOCK_IOPS | RESOURCE_NETWORK_BANDWIDTH => {
                let obj = object(name, v)?;
                if !bool_field(name, obj, "default")? {
                    return Err(invalid(name, "\"default\" must be true"));
                }
                if get(obj, "request").is_some_and(|r| !r.is_null()) {
                    return Err(invalid(
                        name,
                        "\"request\" is not allowed; set only \"limit\"",
                    ));
                }
                let limit = quantity_field(name, obj, "limit", parse_quantity_bytes)?
                    .ok_or_else(|| invalid(name, "\"limit\" is required"))?;
                match name {
                    RESOURCE_BLOCK_BANDWIDTH => IsolatorValue::BlockBandwidth { limit },
                    RESOURCE_BLOCK_IOPS => IsolatorValue::BlockIops { limit },
                    _ => IsolatorValue::NetworkBandwidth { limit },
                }
            }
            CAPABILITIES_RETAIN_SET | CAPABILITIES_REMOVE_SET => {
                let set = string_set(name, object(name, v)?)?;
                if name == CAPABILITIES_RETAIN_SET {
                    IsolatorValue::CapabilitiesRetainSet(set)
                } else {
                    IsolatorValue::CapabilitiesRemoveSet(set)
                }
            }
            SECCOMP_RETAIN_SET | SECCOMP_REMOVE_SET => {
                let obj = object(name, v)?;
                let set = string_set(name, obj)?;
                let errno = match get(obj, "errno") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(e)) if e.is_empty() => None,
                    Some(Value::String(e)) if is_errno_name(e) => Some(e.clone()),
                    Some(other) => {
                        return Err(invalid(
                            name,
                            format!("\"errno\" {other} must be an errno name such as \"EPERM\" (E followed by uppercase letters/digits)"),
                        ))
                    }
                };
                if name == SECCOMP_RETAIN_SET {
                    IsolatorValue::SeccompRetainSet { set, errno }
                } else {
                    IsolatorValue::SeccompRemoveSet { set, errno }
                }
            }
            NO_NEW_PRIVILEGES => match v {
                Value::Bool(b) => IsolatorValue::NoNewPrivileges(*b),
                _ => return Err(invalid(name, "value must be a JSON boolean")),
            },
            OOM_SCORE_ADJ => {
                let n = v
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .filter(|n| OOM_SCORE_ADJ_RANGE.contains(n))
                    .ok_or_else(|| {
                        invalid(
                            name,
                            format!("value {v} must be an integer in -1000..=1000"),
                        )
                    })?;
                IsolatorValue::OomScoreAdj(n)
            }
            CPU_SHARES => {
                let n = v
                    .as_u64()
                    .filter(|n| CPU_SHARES_RANGE.contains(n))
                    .ok_or_else(|| {
                        invalid(name, format!("value {v} must be an integer in 2..=262144"))
                    })?;
                IsolatorValue::CpuShares(n)
            }
            SELINUX_CONTEXT => {
                let obj = object(name, v)?;
                let field = |key: &str, no_colon: bool| -> Result<String, SchemaError> {
                    let s = match get(obj, key) {
                        Some(Value::String(s)) if !s.is_empty() => s.clone(),
                        _ => {
                            return Err(invalid(
                                name,
                                format!("\"{key}\" is required and must be a non-empty string"),
                            ))
                        }
                    };
                    if no_colon && s.contains(':') {
                        return Err(invalid(name, format!("\"{key}\" must not contain ':'")));
                    }
                    Ok(s)
                };
                IsolatorValue::SelinuxContext {
                    user: field("user", true)?,
                    role: field("role", true)?,
                    r#type: field("type", true)?,
                    level: field("level", false)?,
                }
            }
            APPARMOR_PROFILE => match get(object(name, v)?, "profile") {
                Some(Value::String(p)) if !p.is_empty() => {
                    IsolatorValue::ApparmorProfile(p.clone())
                }
                _ => {
                    return Err(invalid(
                        name,
                        "\"profile\" is required and must be a non-empty string",
                    ))
                }
            },
            UNIX_SYSCTL => {
                let mut map = BTreeMap::new();
                for (k, val) in object(name, v)? {
                    let Value::String(s) = val else {
                        return Err(invalid(
                            name,
                            format!("value of sysctl {k:?} must be a string"),
                        ));
                    };
                    map.insert(k.clone(), s.clone());
                }
                IsolatorValue::UnixSysctl(map)
            }
            _ => IsolatorValue::Unknown {
                name: name.to_string(),
                value: v.clone(),
            },
        };
        Ok(value)
    }

    /// Builds the isolator rkt would write for `value`, validating it first
    /// (an out-of-range oom score or an empty capability set is refused).
    pub fn from_typed(value: &IsolatorValue) -> Result<Isolator, SchemaError> {
        let isolator = Isolator {
            name: AcIdentifier::new(value.name())?,
            value: value.to_json(),
        };
        isolator.typed()?;
        Ok(isolator)
    }

    /// True when [`Isolator::typed`] knows this isolator's name.
    pub fn is_known(&self) -> bool {
        KNOWN_ISOLATORS.contains(&self.name.as_str())
    }
}

/// Validates a list of isolators (an app's or a pod's): each known value,
/// single-instance names at most once, and no retain+remove combinations.
pub fn validate_isolators(isolators: &[Isolator], field: &str) -> Result<(), SchemaError> {
    let mut seen = BTreeSet::new();
    for iso in isolators {
        iso.typed()
            .map_err(|e| SchemaError::Invalid(format!("{field}: {e}")))?;
        let name = iso.name.as_str();
        if !seen.insert(name) && iso.is_known() && !MULTIPLE_ALLOWED.contains(&name) {
            return Err(SchemaError::Invalid(format!(
                "{field}: isolator {name:?} appears more than once; keep a single one"
            )));
        }
    }
    for (a, b) in [
        (SECCOMP_RETAIN_SET, SECCOMP_REMOVE_SET),
        (CAPABILITIES_RETAIN_SET, CAPABILITIES_REMOVE_SET),
    ] {
        if seen.contains(a) && seen.contains(b) {
            return Err(SchemaError::Invalid(format!(
                "{field}: isolators {a:?} and {b:?} cannot be combined; use only one of them"
            )));
        }
    }
    Ok(())
}

fn invalid(name: &str, msg: impl std::fmt::Display) -> SchemaError {
    SchemaError::Invalid(format!("isolator {name:?}: {msg}"))
}

fn object<'a>(name: &str, v: &'a Value) -> Result<&'a Map<String, Value>, SchemaError> {
    v.as_object()
        .ok_or_else(|| invalid(name, format!("value must be a JSON object, got {v}")))
}

/// Go's decoder matches keys case-insensitively, preferring an exact match.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn bool_field(name: &str, obj: &Map<String, Value>, key: &str) -> Result<bool, SchemaError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(invalid(
            name,
            format!("\"{key}\" must be a boolean, got {other}"),
        )),
    }
}

fn quantity_field(
    name: &str,
    obj: &Map<String, Value>,
    key: &str,
    parse: fn(&str) -> Result<u64, super::quantity::QuantityError>,
) -> Result<Option<u64>, SchemaError> {
    let text = match get(obj, key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(invalid(
                name,
                format!("\"{key}\" must be a quantity string such as \"512Mi\", got {other}"),
            ))
        }
    };
    parse(&text)
        .map(Some)
        .map_err(|e| invalid(name, format!("\"{key}\": {e}")))
}

fn string_set(name: &str, obj: &Map<String, Value>) -> Result<Vec<String>, SchemaError> {
    let items = match get(obj, "set") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(invalid(
                name,
                "\"set\" is required and must be a non-empty array of strings",
            ))
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(invalid(
                name,
                format!("\"set\" entries must be non-empty strings, got {item}"),
            )),
        })
        .collect()
}

fn is_errno_name(s: &str) -> bool {
    s.len() > 1
        && s.starts_with('E')
        && s[1..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(name: &str, value: Value) -> Isolator {
        Isolator {
            name: AcIdentifier::new(name).unwrap(),
            value,
        }
    }

    #[test]
    fn resources() {
        let cpu = iso(RESOURCE_CPU, json!({"limit": "500m"}));
        assert_eq!(
            cpu.typed().unwrap(),
            IsolatorValue::ResourceCpu {
                request: Some(500),
                limit: Some(500)
            }
        );
        let mem = iso(RESOURCE_MEMORY, json!({"request": "1G", "limit": "2G"}));
        assert_eq!(
            mem.typed().unwrap(),
            IsolatorValue::ResourceMemory {
                request: Some(1_000_000_000),
                limit: Some(2_000_000_000)
            }
        );
        // Bare numbers and Go's case-insensitive keys.
        let mem = iso(RESOURCE_MEMORY, json!({"Limit": 1024}));
        assert!(matches!(
            mem.typed().unwrap(),
            IsolatorValue::ResourceMemory {
                limit: Some(1024),
                ..
            }
        ));
        let err = iso(RESOURCE_CPU, json!({"default": true, "limit": "1"}))
            .typed()
            .unwrap_err();
        assert!(
            err.to_string().contains("\"default\" must be false"),
            "{err}"
        );
        let err = iso(RESOURCE_MEMORY, json!({"limit": "1K"}))
            .typed()
            .unwrap_err();
        assert!(err.to_string().contains("lowercase k"), "{err}");
        let bw = iso(
            RESOURCE_BLOCK_BANDWIDTH,
            json!({"default": true, "limit": "1M"}),
        );
        assert_eq!(
            bw.typed().unwrap(),
            IsolatorValue::BlockBandwidth { limit: 1_000_000 }
        );
        assert!(iso(RESOURCE_BLOCK_IOPS, json!({"limit": "10"}))
            .typed()
            .is_err());
        assert!(iso(
            RESOURCE_NETWORK_BANDWIDTH,
            json!({"default": true, "request": "1", "limit": "1"})
        )
        .typed()
        .is_err());
    }

    #[test]
    fn linux_isolators() {
        let caps = iso(
            CAPABILITIES_RETAIN_SET,
            json!({"set": ["CAP_NET_ADMIN", "CAP_CHOWN"]}),
        );
        assert_eq!(
            caps.typed().unwrap(),
            IsolatorValue::CapabilitiesRetainSet(vec!["CAP_NET_ADMIN".into(), "CAP_CHOWN".into()])
        );
        assert!(iso(CAPABILITIES_REMOVE_SET, json!({"set": []}))
            .typed()
            .is_err());
        let sec = iso(
            SECCOMP_REMOVE_SET,
            json!({"set": ["@rkt/default-blacklist", "reboot"], "errno": "EPERM"}),
        );
        assert_eq!(
            sec.typed().unwrap(),
            IsolatorValue::SeccompRemoveSet {
                set: vec!["@rkt/default-blacklist".into(), "reboot".into()],
                errno: Some("EPERM".into())
            }
        );
        assert!(iso(
            SECCOMP_RETAIN_SET,
            json!({"set": ["read"], "errno": "eperm"})
        )
        .typed()
        .is_err());
        assert_eq!(
            iso(NO_NEW_PRIVILEGES, json!(true)).typed().unwrap(),
            IsolatorValue::NoNewPrivileges(true)
        );
        assert!(iso(NO_NEW_PRIVILEGES, json!("true")).typed().is_err());
        assert_eq!(
            iso(OOM_SCORE_ADJ, json!(-500)).typed().unwrap(),
            IsolatorValue::OomScoreAdj(-500)
        );
        assert!(iso(OOM_SCORE_ADJ, json!(1001)).typed().is_err());
        assert!(iso(CPU_SHARES, json!(1)).typed().is_err());
        assert_eq!(
            iso(CPU_SHARES, json!(1024)).typed().unwrap(),
            IsolatorValue::CpuShares(1024)
        );
        let se = iso(
            SELINUX_CONTEXT,
            json!({"user": "system_u", "role": "system_r", "type": "svirt_lxc_net_t", "level": "s0:c1,c2"}),
        );
        assert!(matches!(
            se.typed().unwrap(),
            IsolatorValue::SelinuxContext { level, .. } if level == "s0:c1,c2"
        ));
        assert!(iso(
            SELINUX_CONTEXT,
            json!({"user": "a:b", "role": "r", "type": "t", "level": "l"})
        )
        .typed()
        .is_err());
        assert!(iso(APPARMOR_PROFILE, json!({"profile": ""}))
            .typed()
            .is_err());
        let sysctl = iso(UNIX_SYSCTL, json!({"net.ipv4.ip_forward": "1"}));
        assert!(
            matches!(sysctl.typed().unwrap(), IsolatorValue::UnixSysctl(m) if m["net.ipv4.ip_forward"] == "1")
        );
        let unknown = iso("example.com/whatever", json!({"x": [1]}));
        assert!(!unknown.is_known());
        assert!(matches!(
            unknown.typed().unwrap(),
            IsolatorValue::Unknown { .. }
        ));
    }

    #[test]
    fn from_typed_writes_rkt_json() {
        let cpu = Isolator::from_typed(&IsolatorValue::ResourceCpu {
            request: Some(250),
            limit: Some(250),
        })
        .unwrap();
        assert_eq!(
            serde_json::to_value(&cpu).unwrap(),
            json!({"name": "resource/cpu", "value": {"request": "250m", "limit": "250m"}})
        );
        let mem = Isolator::from_typed(&IsolatorValue::ResourceMemory {
            request: Some(50_000_000),
            limit: Some(50_000_000),
        })
        .unwrap();
        assert_eq!(mem.value, json!({"request": "50M", "limit": "50M"}));
        let caps = Isolator::from_typed(&IsolatorValue::CapabilitiesRemoveSet(vec![
            "CAP_KILL".into()
        ]))
        .unwrap();
        assert_eq!(caps.name.as_str(), CAPABILITIES_REMOVE_SET);
        assert_eq!(caps.value, json!({"set": ["CAP_KILL"]}));
        assert!(Isolator::from_typed(&IsolatorValue::OomScoreAdj(5000)).is_err());
        let all = [
            IsolatorValue::BlockIops { limit: 100 },
            IsolatorValue::SeccompRetainSet {
                set: vec!["@appc.io/all".into()],
                errno: None,
            },
            IsolatorValue::NoNewPrivileges(true),
            IsolatorValue::ApparmorProfile("p".into()),
            IsolatorValue::UnixSysctl(BTreeMap::from([("kernel.msgmax".into(), "1".into())])),
        ];
        for v in all {
            let iso = Isolator::from_typed(&v).unwrap();
            assert_eq!(iso.typed().unwrap(), v);
        }
    }

    #[test]
    fn list_rules() {
        let seccomp = |name| iso(name, json!({"set": ["read"]}));
        let err = validate_isolators(
            &[seccomp(SECCOMP_RETAIN_SET), seccomp(SECCOMP_RETAIN_SET)],
            "app.isolators",
        )
        .unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        let err = validate_isolators(
            &[seccomp(SECCOMP_RETAIN_SET), seccomp(SECCOMP_REMOVE_SET)],
            "app.isolators",
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot be combined"), "{err}");
        let caps = |name| iso(name, json!({"set": ["CAP_KILL"]}));
        assert!(validate_isolators(
            &[caps(CAPABILITIES_RETAIN_SET), caps(CAPABILITIES_RETAIN_SET)],
            "app.isolators"
        )
        .is_ok());
        assert!(validate_isolators(
            &[caps(CAPABILITIES_RETAIN_SET), caps(CAPABILITIES_REMOVE_SET)],
            "app.isolators"
        )
        .is_err());
    }
}
