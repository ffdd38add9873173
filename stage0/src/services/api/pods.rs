//! Pods as the API describes them, and `PodFilter` matching.

use std::net::IpAddr;
use std::time::SystemTime;

use abi::calendar::unix_nanos;

use abi::pod_dir;

use super::images::ImageCache;
use super::proto::{self, KeyValue, PodFilter};
use crate::pod::lifecycle::{Pod, PodState};
use crate::store::Store;

/// rkt's mapping of its pod states onto the API's.
pub fn state(state: PodState) -> proto::PodState {
    use proto::PodState as P;
    match state {
        PodState::Embryo => P::Embryo,
        PodState::Preparing => P::Preparing,
        PodState::AbortedPrepare => P::AbortedPrepare,
        PodState::Prepared => P::Prepared,
        PodState::Running => P::Running,
        PodState::Deleting | PodState::ExitedDeleting => P::Deleting,
        PodState::Exited => P::Exited,
        PodState::ExitedGarbage | PodState::Garbage => P::Garbage,
    }
}

fn nanos(t: Option<SystemTime>) -> i64 {
    t.map_or(0, unix_nanos)
}

/// The pod as the API describes it: a summary, or with `detail` its
/// manifest, its apps' states and their whole images (from `store`).
pub fn describe(
    pod: &Pod,
    detail: bool,
    store: Option<&Store>,
    images: &mut ImageCache,
) -> proto::Pod {
    let st = pod.state();
    let mut out = proto::Pod {
        id: pod.uuid().to_string(),
        state: state(st) as i32,
        ..Default::default()
    };
    if matches!(
        st,
        PodState::Embryo | PodState::Preparing | PodState::AbortedPrepare
    ) {
        return out;
    }
    let ran = st == PodState::Running || st.is_after_run();
    if ran {
        out.pid = pod.pid_file().unwrap_or(0);
    }
    out.created_at = nanos(pod.created());
    out.started_at = nanos(pod.started());
    out.gc_marked_at = nanos(pod.gc_marked());
    if st == PodState::Running {
        out.networks = pod
            .networks()
            .into_iter()
            .map(|n| {
                let ip: Option<IpAddr> = n.ip.as_deref().and_then(|s| s.parse().ok());
                let show = |v4: bool| {
                    ip.filter(|ip| ip.is_ipv4() == v4)
                        .map(|ip| ip.to_string())
                        .unwrap_or_default()
                };
                proto::Network {
                    name: n.net_name.clone(),
                    ipv4: show(true),
                    ipv6: show(false),
                }
            })
            .collect();
        out.cgroup = std::fs::read_to_string(pod.path().join(pod_dir::SUBCGROUP))
            .map(|c| format!("/{}", c.trim().trim_start_matches('/')))
            .unwrap_or_default();
    }
    let Ok(bytes) = pod.manifest_bytes() else {
        return out;
    };
    let Ok(manifest) = abi::schema::PodManifest::from_json(&bytes) else {
        return out;
    };
    out.annotations = manifest
        .annotations
        .iter()
        .map(|a| KeyValue {
            key: a.name.as_str().to_string(),
            value: a.value.clone(),
        })
        .collect();
    for app in &manifest.apps {
        let name = app.name.as_str();
        let image_id = app.image.id.to_string();
        let mut a = proto::App {
            name: name.to_string(),
            annotations: app
                .annotations
                .iter()
                .map(|a| KeyValue {
                    key: a.name.as_str().to_string(),
                    value: a.value.clone(),
                })
                .collect(),
            ..Default::default()
        };
        if detail {
            a.image = Some(images.get(store, &image_id));
            if ran {
                match pod.app_exit_code(name) {
                    Some(code) => {
                        a.state = proto::AppState::Exited as i32;
                        a.exit_code = code;
                    }
                    None if st == PodState::Running && pod.app_started(name) => {
                        a.state = proto::AppState::Running as i32;
                    }
                    None => {}
                }
            }
        } else {
            a.image = Some(proto::Image {
                id: image_id,
                ..Default::default()
            });
        }
        out.apps.push(a);
    }
    if detail {
        out.manifest = bytes;
    }
    out
}

/// Whether the pod meets every condition `filter` sets.
pub fn matches(pod: &proto::Pod, filter: &PodFilter) -> bool {
    let image_ids: Vec<&str> = pod
        .apps
        .iter()
        .filter_map(|a| a.image.as_ref().map(|i| i.id.as_str()))
        .collect();
    (filter.ids.is_empty() || filter.ids.contains(&pod.id))
        && (filter.states.is_empty() || filter.states.contains(&pod.state))
        && filter
            .app_names
            .iter()
            .all(|n| pod.apps.iter().any(|a| a.name == *n))
        && filter
            .image_ids
            .iter()
            .all(|id| image_ids.contains(&id.as_str()))
        && filter
            .network_names
            .iter()
            .all(|n| pod.networks.iter().any(|net| net.name == *n))
        && filter
            .annotations
            .iter()
            .all(|kv| pod.annotations.contains(kv))
        && (filter.cgroups.is_empty() || filter.cgroups.contains(&pod.cgroup))
        && (filter.pod_sub_cgroups.is_empty()
            || (!pod.cgroup.is_empty()
                && filter
                    .pod_sub_cgroups
                    .iter()
                    .any(|c| c == &pod.cgroup || c.starts_with(&format!("{}/", pod.cgroup)))))
}

/// A filter's values that cannot mean anything: unknown state numbers.
pub fn check(filter: &PodFilter) -> Result<(), String> {
    for s in &filter.states {
        if proto::PodState::try_from(*s).is_err() {
            return Err(format!("pod filter: {s} is not a PodState (0 to 8)"));
        }
    }
    Ok(())
}
