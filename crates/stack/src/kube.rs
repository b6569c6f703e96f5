//! `stack kube`: Kubernetes manifests for a stack, built from k8s-openapi's typed API structs.
//! Per service a Deployment (one replica, the same image, command and environment) and, when
//! it has ports, a Service named like the conductor container (`<stack>-<service>`), so the
//! host names a command uses (`${peer.NAME}`) resolve there too: a NodePort Service with
//! nodePort = the host port for a service with `ports`, a ClusterIP one for the others (on the
//! ports its readiness check names). Readiness checks become readiness probes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, PodSpec, PodTemplateSpec, Probe, Service as KService, ServicePort,
    ServiceSpec, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::file::{Check, Service, Stack};

/// Every manifest of the stack, as JSON values (Deployments, then Services).
pub fn manifests(stack: &Stack) -> Vec<Value> {
    let mut out = Vec::new();
    for s in &stack.services {
        out.push(serde_json::to_value(deployment(stack, s)).expect("serializes"));
    }
    for s in &stack.services {
        if let Some(svc) = service(stack, s) {
            out.push(serde_json::to_value(svc).expect("serializes"));
        }
    }
    out
}

/// A `v1` List holding every manifest (`kubectl apply -f` takes it).
pub fn to_json(stack: &Stack) -> String {
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": manifests(stack)});
    serde_json::to_string_pretty(&list).expect("serializes") + "\n"
}

/// A YAML stream, one document per manifest.
pub fn to_yaml(stack: &Stack) -> Result<String> {
    let mut out = format!("# stack {} (conductor stack kube)\n", stack.name);
    for m in manifests(stack) {
        out.push_str("---\n");
        out.push_str(&yaml_serde::to_string(&m).map_err(|e| Error::Invalid(format!("yaml: {e}")))?);
    }
    Ok(out)
}

fn labels(stack: &Stack, s: &Service) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), s.name.clone()),
        ("app.kubernetes.io/part-of".to_string(), stack.name.clone()),
    ])
}

fn deployment(stack: &Stack, s: &Service) -> Deployment {
    let mut annotations = BTreeMap::new();
    if !s.copy.is_empty() {
        // Kubernetes has no "copy into the container": the image must hold these.
        let copies: Vec<String> = s.copy.iter().map(|c| format!("{} -> {}", c.src.display(), c.dst.display())).collect();
        annotations.insert("conductor.io/copy-into-image".to_string(), copies.join(", "));
    }
    if !s.volumes.is_empty() {
        let v: Vec<String> = s.volumes.iter().map(|v| format!("{}:{}", v.host.display(), v.container.display())).collect();
        annotations.insert("conductor.io/volumes".to_string(), v.join(", "));
    }
    let env: Vec<EnvVar> = s
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| EnvVar { name: k.into(), value: Some(v.into()), ..Default::default() })
        .collect();
    let ports: Vec<ContainerPort> = container_ports(s)
        .into_iter()
        .map(|(p, proto)| ContainerPort { container_port: p.into(), protocol: Some(proto), ..Default::default() })
        .collect();
    let container = Container {
        name: s.name.clone(),
        image: Some(s.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: (!s.command.is_empty()).then(|| s.command.clone()),
        env: (!env.is_empty()).then_some(env),
        ports: (!ports.is_empty()).then_some(ports),
        working_dir: s.workdir.clone(),
        readiness_probe: s.ready.as_ref().map(|r| probe(&r.check)),
        ..Default::default()
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(s.container.clone()),
            labels: Some(labels(stack, s)),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector { match_labels: Some(labels(stack, s)), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(stack, s)), ..Default::default() }),
                spec: Some(PodSpec { containers: vec![container], ..Default::default() }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn probe(c: &Check) -> Probe {
    match c {
        Check::Tcp(p) => Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int((*p).into()), ..Default::default() }),
            ..Default::default()
        },
        Check::Http { port, path } => Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int((*port).into()),
                path: Some(path.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// The ports a service listens on: its forwarded container ports, else its readiness port.
fn container_ports(s: &Service) -> Vec<(u16, String)> {
    let mut v: Vec<(u16, String)> = s.ports.iter().map(|p| (p.container_port, p.proto.to_string().to_uppercase())).collect();
    if let Some(r) = &s.ready {
        let (Check::Tcp(p) | Check::Http { port: p, .. }) = &r.check;
        if !v.iter().any(|(q, _)| q == p) {
            v.push((*p, "TCP".into()));
        }
    }
    v
}

fn service(stack: &Stack, s: &Service) -> Option<KService> {
    let exposed = !s.ports.is_empty();
    let ports: Vec<ServicePort> = if exposed {
        s.ports
            .iter()
            .map(|p| ServicePort {
                name: Some(format!("{}-{}", p.proto, p.host_port)),
                port: p.container_port.into(),
                target_port: Some(IntOrString::Int(p.container_port.into())),
                node_port: Some(p.host_port.into()),
                protocol: Some(p.proto.to_string().to_uppercase()),
                ..Default::default()
            })
            .collect()
    } else {
        container_ports(s)
            .into_iter()
            .map(|(p, proto)| ServicePort {
                name: Some(format!("{}-{p}", proto.to_lowercase())),
                port: p.into(),
                target_port: Some(IntOrString::Int(p.into())),
                protocol: Some(proto),
                ..Default::default()
            })
            .collect()
    };
    if ports.is_empty() {
        return None;
    }
    Some(KService {
        metadata: ObjectMeta { name: Some(s.container.clone()), labels: Some(labels(stack, s)), ..Default::default() },
        spec: Some(ServiceSpec {
            type_: Some(if exposed { "NodePort" } else { "ClusterIP" }.into()),
            selector: Some(labels(stack, s)),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::path::Path;

    const MATRIX: &str = r#"
[services.counter]
image = "py"
command = ["bash", "/srv/counter-service/run.sh"]
copy = [{ src = ".", dst = "/srv/x" }]
ready = { http = 8080, path = "/health" }

[services.external]
image = "py"
command = ["bash", "/srv/external-service/run.sh", "http://${peer.counter}:8080/"]
ports = ["8080-3000"]
peers = ["counter"]
depends_on = ["counter"]
"#;

    fn stack() -> Stack {
        crate::file::parse(Path::new("/tmp/matrix.toml"), MATRIX).unwrap()
    }

    fn check(deploys: &[Deployment], services: &[KService]) {
        assert_eq!(deploys.len(), 2);
        let ext = deploys.iter().find(|d| d.metadata.name.as_deref() == Some("matrix-external")).unwrap();
        let c = &ext.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
        assert_eq!(c.command.as_ref().unwrap()[2], "http://matrix-counter:8080/", "the peer is the Service's name");
        assert_eq!(c.env.as_ref().unwrap()[0].name, "COUNTER_HOST");
        let counter = deploys.iter().find(|d| d.metadata.name.as_deref() == Some("matrix-counter")).unwrap();
        assert!(counter.metadata.annotations.as_ref().unwrap().contains_key("conductor.io/copy-into-image"));
        let probe = counter.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].readiness_probe.clone();
        assert_eq!(probe.unwrap().http_get.unwrap().path.as_deref(), Some("/health"));

        let by_name = |n: &str| services.iter().find(|s| s.metadata.name.as_deref() == Some(n)).unwrap().spec.clone().unwrap();
        let ext = by_name("matrix-external");
        assert_eq!(ext.type_.as_deref(), Some("NodePort"));
        let p = &ext.ports.unwrap()[0];
        assert_eq!((p.port, p.node_port), (8080, Some(3000)));
        let counter = by_name("matrix-counter");
        assert_eq!(counter.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(counter.ports.unwrap()[0].port, 8080);
    }

    #[test]
    fn json_list_parses_back() {
        let v: Value = serde_json::from_str(&to_json(&stack())).unwrap();
        assert_eq!((v["apiVersion"].as_str(), v["kind"].as_str()), (Some("v1"), Some("List")));
        let items = v["items"].as_array().unwrap();
        let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Deployment", "Deployment", "Service", "Service"]);
        assert!(items.iter().all(|i| i["apiVersion"] == "apps/v1" || i["apiVersion"] == "v1"));
        let deploys: Vec<Deployment> = items[..2].iter().map(|i| serde_json::from_value(i.clone()).unwrap()).collect();
        let services: Vec<KService> = items[2..].iter().map(|i| serde_json::from_value(i.clone()).unwrap()).collect();
        check(&deploys, &services);
    }

    #[test]
    fn yaml_stream_parses_back() {
        let y = to_yaml(&stack()).unwrap();
        let docs: Vec<Value> = yaml_serde::Deserializer::from_str(&y).map(|d| Value::deserialize(d).unwrap()).collect();
        assert_eq!(docs.len(), 4, "{y}");
        let deploys: Vec<Deployment> = docs[..2].iter().map(|d| serde_json::from_value(d.clone()).unwrap()).collect();
        let services: Vec<KService> = docs[2..].iter().map(|d| serde_json::from_value(d.clone()).unwrap()).collect();
        check(&deploys, &services);
    }
}
