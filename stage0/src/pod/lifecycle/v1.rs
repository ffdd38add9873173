//! rkt's `api/v1` JSON view of a pod, printed by `list --format=json` and
//! `status --format=json`. As in rkt, pod times are seconds since the epoch
//! and app times nanoseconds.

use abi::calendar::{unix_nanos, unix_secs};
use std::collections::BTreeMap;

use serde::Serialize;

use super::{NetInfo, Pod, PodError, PodState};
use crate::pod::manifest::MUTABLE_ANNOTATION;

#[derive(Debug, Clone, Serialize)]
pub struct V1Pod {
    pub name: String,
    pub state: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub app_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<V1App>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct V1App {
    pub name: String,
    /// `created`, `running`, `exited` or `unknown`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub image_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<V1Mount>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct V1Mount {
    pub name: String,
    pub container_path: String,
    pub host_path: String,
    pub read_only: bool,
}

/// App state inferred from the pod's (immutable pods: all apps share the
/// pod's life).
fn app_state_from_pod(state: PodState) -> &'static str {
    match state {
        PodState::Embryo | PodState::Preparing | PodState::AbortedPrepare => "unknown",
        PodState::Prepared => "created",
        PodState::Running => "running",
        _ => "exited",
    }
}

impl Pod {
    /// rkt's `NewPodFromInternalPod`.
    pub fn to_v1(&self) -> Result<V1Pod, PodError> {
        let mut pod = V1Pod {
            name: self.uuid.clone(),
            state: self.state.to_string(),
            networks: self.networks(),
            app_names: Vec::new(),
            apps: Vec::new(),
            created_at: self.created().map(unix_secs),
            started_at: self.started().map(unix_secs),
            user_annotations: BTreeMap::new(),
            user_labels: BTreeMap::new(),
        };
        if !self.has_manifest() {
            return Ok(pod);
        }
        let manifest = self.manifest()?;
        let created = self.created().map(unix_nanos);
        let started = self.started().map(unix_nanos);
        let finished = self.gc_marked().map(unix_nanos);
        // Apps of a mutable pod live on their own; the others share the pod's.
        let mutable = manifest
            .annotations
            .iter()
            .any(|a| a.name.as_str() == MUTABLE_ANNOTATION && a.value == "true");
        for ra in &manifest.apps {
            let name = ra.name.as_str().to_string();
            pod.app_names.push(name.clone());
            let exit_code = self.app_exit_code(&name);
            let mounts = ra
                .mounts
                .iter()
                .map(|m| {
                    let vol = m
                        .app_volume
                        .as_ref()
                        .or_else(|| manifest.volume(m.volume.as_str()));
                    V1Mount {
                        name: m.volume.as_str().to_string(),
                        container_path: m.path.clone(),
                        host_path: vol.and_then(|v| v.source.clone()).unwrap_or_default(),
                        read_only: vol.and_then(|v| v.read_only).unwrap_or(false),
                    }
                })
                .collect();
            let (user_annotations, user_labels) = ra
                .app
                .as_ref()
                .map(|a| (a.user_annotations.clone(), a.user_labels.clone()))
                .unwrap_or_default();
            let state = if exit_code.is_some() {
                "exited"
            } else if mutable && self.state == PodState::Running && !self.app_started(&name) {
                // `rkt app add`ed, not (yet) started.
                "created"
            } else {
                app_state_from_pod(self.state)
            };
            pod.apps.push(V1App {
                name,
                state,
                created_at: created,
                started_at: started,
                finished_at: finished,
                exit_code,
                image_id: ra.image.id.as_str().to_string(),
                mounts,
                user_annotations,
                user_labels,
            });
        }
        pod.user_annotations = manifest.user_annotations.clone();
        pod.user_labels = manifest.user_labels.clone();
        Ok(pod)
    }
}
