//! `ListenEvents`: what changed on the host, found by comparing snapshots
//! of the pods and the store a few times a second while someone listens
//! (rkt only ever answered "not implemented").

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::SystemTime;

use super::proto::{self, Event, EventFilter, EventType, KeyValue};
use crate::pod::lifecycle::{Pod, PodState};
use crate::store::Store;

/// One pod, as far as events go.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodSnap {
    pub state: Option<PodState>,
    pub apps_started: BTreeSet<String>,
    pub apps_exited: BTreeMap<String, i32>,
}

/// The host at one moment: pods by UUID, images by ID (with their names).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub pods: BTreeMap<String, PodSnap>,
    pub images: BTreeMap<String, String>,
}

/// Takes a snapshot of `data_dir`'s pods and the store's images. A read
/// that fails fails the whole snapshot: a partial one would report
/// everything it missed as gone.
pub fn snapshot(data_dir: &Path, store: Option<&Store>) -> Result<Snapshot, String> {
    let mut snap = Snapshot::default();
    for pod in Pod::list(data_dir).map_err(|e| e.to_string())? {
        let state = pod.state();
        let mut p = PodSnap {
            state: Some(state),
            ..Default::default()
        };
        if state == PodState::Running || state.is_after_run() {
            for app in pod.app_names().map_err(|e| e.to_string())? {
                if pod.app_started(&app) {
                    p.apps_started.insert(app.clone());
                }
                if let Some(code) = pod.app_exit_code(&app) {
                    p.apps_exited.insert(app, code);
                }
            }
        }
        snap.pods.insert(pod.uuid().to_string(), p);
    }
    if let Some(store) = store {
        for image in store.list().map_err(|e| e.to_string())? {
            snap.images.insert(image.key.to_string(), image.name);
        }
    }
    Ok(snap)
}

fn event(kind: EventType, id: &str, from: &str, time: i64, data: Vec<KeyValue>) -> Event {
    Event {
        r#type: kind as i32,
        id: id.to_string(),
        from: from.to_string(),
        time,
        data,
    }
}

fn prepared(s: Option<PodState>) -> bool {
    matches!(s, Some(PodState::Prepared))
}

fn started(s: Option<PodState>) -> bool {
    matches!(s, Some(st) if st == PodState::Running || st.is_after_run())
}

fn exited(s: Option<PodState>) -> bool {
    matches!(s, Some(st) if st.is_after_run())
}

/// The events that lead from `old` to `new`, stamped `now` (seconds).
pub fn diff(old: &Snapshot, new: &Snapshot, now: i64) -> Vec<Event> {
    let mut out = Vec::new();
    let none = PodSnap::default();
    for (uuid, p) in &new.pods {
        let before = old.pods.get(uuid).unwrap_or(&none);
        let (was, is) = (before.state, p.state);
        if is == Some(PodState::AbortedPrepare) && was != is {
            out.push(event(
                EventType::PodPrepareAborted,
                uuid,
                "",
                now,
                Vec::new(),
            ));
        }
        // A pod may go through several states between two looks: each
        // step it passed is reported, in order.
        let now_prepared_or_later = prepared(is) || started(is);
        let was_prepared_or_later = prepared(was) || started(was);
        if now_prepared_or_later && !was_prepared_or_later {
            out.push(event(EventType::PodPrepared, uuid, "", now, Vec::new()));
        }
        if started(is) && !started(was) {
            out.push(event(EventType::PodStarted, uuid, "", now, Vec::new()));
        }
        for app in p.apps_started.difference(&before.apps_started) {
            out.push(event(EventType::AppStarted, uuid, app, now, Vec::new()));
        }
        for (app, code) in &p.apps_exited {
            if !before.apps_exited.contains_key(app) {
                let data = vec![KeyValue {
                    key: "exit_code".into(),
                    value: code.to_string(),
                }];
                out.push(event(EventType::AppExited, uuid, app, now, data));
            }
        }
        if exited(is) && !exited(was) {
            out.push(event(EventType::PodExited, uuid, "", now, Vec::new()));
        }
    }
    for uuid in old.pods.keys().filter(|u| !new.pods.contains_key(*u)) {
        out.push(event(
            EventType::PodGarbageCollected,
            uuid,
            "",
            now,
            Vec::new(),
        ));
    }
    for (id, name) in &new.images {
        if !old.images.contains_key(id) {
            out.push(event(EventType::ImageImported, id, name, now, Vec::new()));
        }
    }
    for (id, name) in &old.images {
        if !new.images.contains_key(id) {
            out.push(event(EventType::ImageRemoved, id, name, now, Vec::new()));
        }
    }
    out
}

/// Whether `e` is one `filter` asks for.
pub fn wanted(e: &Event, filter: &EventFilter) -> bool {
    (filter.types.is_empty() || filter.types.contains(&e.r#type))
        && (filter.ids.is_empty() || filter.ids.contains(&e.id))
        && (filter.names.is_empty() || filter.names.contains(&e.from))
        && (filter.since_time == 0 || e.time >= filter.since_time)
        && (filter.until_time == 0 || e.time <= filter.until_time)
}

/// A filter's values that cannot mean anything.
pub fn check(filter: &EventFilter) -> Result<(), String> {
    for t in &filter.types {
        if proto::EventType::try_from(*t).is_err() {
            return Err(format!("event filter: {t} is not an EventType (0 to 9)"));
        }
    }
    if filter.until_time != 0 && filter.since_time > filter.until_time {
        return Err("event filter: since_time is after until_time".into());
    }
    Ok(())
}

pub fn now_secs() -> i64 {
    abi::calendar::unix_secs(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(state: PodState, started: &[&str], exited: &[(&str, i32)]) -> PodSnap {
        PodSnap {
            state: Some(state),
            apps_started: started.iter().map(|s| s.to_string()).collect(),
            apps_exited: exited.iter().map(|(a, c)| (a.to_string(), *c)).collect(),
        }
    }

    fn kinds(events: &[Event]) -> Vec<(EventType, String, String)> {
        events
            .iter()
            .map(|e| {
                (
                    EventType::try_from(e.r#type).unwrap(),
                    e.id.clone(),
                    e.from.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_pods_life_between_two_looks() {
        let old = Snapshot::default();
        let mut new = Snapshot::default();
        new.pods
            .insert("p".into(), pod(PodState::Exited, &["web"], &[("web", 3)]));
        new.images
            .insert("sha512-1".into(), "example.com/web".into());
        let e = diff(&old, &new, 10);
        use EventType::*;
        assert_eq!(
            kinds(&e),
            vec![
                (PodPrepared, "p".into(), "".into()),
                (PodStarted, "p".into(), "".into()),
                (AppStarted, "p".into(), "web".into()),
                (AppExited, "p".into(), "web".into()),
                (PodExited, "p".into(), "".into()),
                (ImageImported, "sha512-1".into(), "example.com/web".into()),
            ]
        );
        assert_eq!(e[3].data[0].value, "3");
        assert!(diff(&new, &new, 11).is_empty(), "nothing changed");
        let gone = diff(&new, &Snapshot::default(), 12);
        assert_eq!(
            kinds(&gone),
            vec![
                (PodGarbageCollected, "p".into(), "".into()),
                (ImageRemoved, "sha512-1".into(), "example.com/web".into()),
            ]
        );
    }

    #[test]
    fn filters() {
        let e = event(EventType::PodStarted, "p", "", 100, Vec::new());
        let f = |types: Vec<i32>, since: i64, until: i64| EventFilter {
            types,
            since_time: since,
            until_time: until,
            ..Default::default()
        };
        assert!(wanted(&e, &f(vec![], 0, 0)));
        assert!(wanted(&e, &f(vec![EventType::PodStarted as i32], 100, 100)));
        assert!(!wanted(&e, &f(vec![EventType::PodExited as i32], 0, 0)));
        assert!(!wanted(&e, &f(vec![], 101, 0)));
        assert!(check(&f(vec![42], 0, 0)).is_err());
        assert!(check(&f(vec![], 5, 4)).is_err());
    }
}
