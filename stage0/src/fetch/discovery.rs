//! appc meta discovery: an image name and labels become image URLs (and a
//! prefix's public-key URLs) from the `ac-discovery` and
//! `ac-discovery-pubkeys` meta tags at `https://{prefix}?ac-discovery=1`,
//! trying the name itself and then each parent prefix.

use thiserror::Error;

use super::http::Http;

/// Discovery pages are small HTML documents.
const MAX_PAGE_BYTES: u64 = 1 << 20;

#[derive(Debug, Error)]
#[error("discovery of {name:?} found no {what}: {}; check the name, or fetch the image by URL or file", .attempts.join("; "))]
pub struct DiscoveryError {
    pub name: String,
    pub what: &'static str,
    /// What each prefix tried gave.
    pub attempts: Vec<String>,
}

/// An image and its signature, as a template rendered them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AciEndpoint {
    pub aci: String,
    pub asc: String,
}

/// The image URLs for `name` with `labels` (every label fills its
/// `{label}`; `version` defaults to `latest`), from the first prefix whose
/// page yields any.
pub fn discover_acis(
    http: &Http,
    allow_http: bool,
    name: &str,
    labels: &[(String, String)],
) -> Result<Vec<AciEndpoint>, DiscoveryError> {
    let mut vars: Vec<(String, String)> = labels.to_vec();
    if !vars.iter().any(|(k, _)| k == "version") {
        vars.push(("version".into(), "latest".into()));
    }
    vars.push(("name".into(), name.to_string()));
    walk(http, allow_http, name, "image URLs", |tags| {
        tags.iter()
            .filter(|t| t.kind == "ac-discovery" && name.starts_with(&t.prefix))
            .filter_map(|t| {
                Some(AciEndpoint {
                    aci: render(&t.url, &vars, "aci")?,
                    asc: render(&t.url, &vars, "aci.asc")?,
                })
            })
            .collect()
    })
}

/// The public-key URLs offered for `prefix`.
pub fn discover_keys(
    http: &Http,
    allow_http: bool,
    prefix: &str,
) -> Result<Vec<String>, DiscoveryError> {
    walk(http, allow_http, prefix, "public keys", |tags| {
        tags.iter()
            .filter(|t| t.kind == "ac-discovery-pubkeys" && prefix.starts_with(&t.prefix))
            .map(|t| t.url.clone())
            .collect()
    })
}

fn walk<T>(
    http: &Http,
    allow_http: bool,
    name: &str,
    what: &'static str,
    pick: impl Fn(&[MetaTag]) -> Vec<T>,
) -> Result<Vec<T>, DiscoveryError> {
    let mut attempts = Vec::new();
    let mut prefix = name;
    loop {
        match page(http, allow_http, prefix) {
            Ok(html) => {
                let found = pick(&meta_tags(&html));
                if !found.is_empty() {
                    return Ok(found);
                }
                attempts.push(format!("{prefix}: no matching meta tags"));
            }
            Err(why) => attempts.push(format!("{prefix}: {why}")),
        }
        match prefix.rfind('/') {
            Some(i) => prefix = &prefix[..i],
            None => break,
        }
    }
    Err(DiscoveryError {
        name: name.to_string(),
        what,
        attempts,
    })
}

/// The discovery page of `prefix`: https, then (when allowed) plain http.
fn page(http: &Http, allow_http: bool, prefix: &str) -> Result<String, String> {
    let secure = format!("https://{prefix}?ac-discovery=1");
    let first = http.get_small(&secure, MAX_PAGE_BYTES);
    let (status, body) = match first {
        Ok((200, body)) => (200, body),
        other if allow_http => {
            let plain = format!("http://{prefix}?ac-discovery=1");
            http.get_small(&plain, MAX_PAGE_BYTES).map_err(|e| {
                let first = match other {
                    Ok((s, _)) => format!("{secure}: the server answered {s}"),
                    Err(e) => e.to_string(),
                };
                format!("{first}; {e}")
            })?
        }
        Ok((status, _)) => {
            return Err(format!(
                "{secure}: the server answered {status}, expected 200"
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    if status != 200 {
        return Err(format!("the server answered {status}, expected 200"));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MetaTag {
    kind: String,
    prefix: String,
    url: String,
}

/// `<meta name="ac-…" content="PREFIX URL">` tags, in page order.
fn meta_tags(html: &str) -> Vec<MetaTag> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut rest = 0;
    while let Some(start) = lower[rest..].find("<meta").map(|i| rest + i) {
        let end = lower[start..].find('>').map_or(lower.len(), |i| start + i);
        let tag = &html[start..end];
        rest = end;
        let (Some(name), Some(content)) = (attribute(tag, "name"), attribute(tag, "content"))
        else {
            continue;
        };
        if !name.starts_with("ac-") {
            continue;
        }
        let mut parts = content.split_whitespace();
        if let (Some(prefix), Some(url), None) = (parts.next(), parts.next(), parts.next()) {
            out.push(MetaTag {
                kind: name,
                prefix: prefix.to_string(),
                url: url.to_string(),
            });
        }
    }
    out
}

/// The value of attribute `name` in one tag (quoted with " or ').
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name).map(|i| from + i) {
        from = i + name.len();
        let before_ok = i == 0 || lower.as_bytes()[i - 1].is_ascii_whitespace();
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value = tag[tag.len() - after.len() + 1..].trim_start();
        let quote = value.chars().next()?;
        if quote != '"' && quote != '\'' {
            return value.split_whitespace().next().map(str::to_string);
        }
        let inner = &value[1..];
        return inner.find(quote).map(|j| inner[..j].to_string());
    }
    None
}

/// `template` with `{ext}` and every `{var}` filled; `None` if one is left.
fn render(template: &str, vars: &[(String, String)], ext: &str) -> Option<String> {
    if !template.contains("{ext}") {
        return None;
    }
    let mut out = template.replace("{ext}", ext);
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    (!out.contains('{') && !out.contains('}')).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_tags_are_read_whatever_the_quoting() {
        let html = r#"<html><head>
            <META name="ac-discovery" content="example.com https://example.com/{name}-{version}-{os}-{arch}.{ext}">
            <meta content='example.com/app https://k.example.com/pubkeys.gpg' name='ac-discovery-pubkeys'/>
            <meta name="description" content="not ours">
            <meta name="ac-discovery" content="only-one-part">
        </head></html>"#;
        let tags = meta_tags(html);
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert_eq!(tags[0].kind, "ac-discovery");
        assert_eq!(tags[0].prefix, "example.com");
        assert_eq!(tags[1].kind, "ac-discovery-pubkeys");
        assert_eq!(tags[1].url, "https://k.example.com/pubkeys.gpg");
    }

    #[test]
    fn templates_need_every_variable() {
        let vars = vec![
            ("version".to_string(), "1.0".to_string()),
            ("os".to_string(), "linux".to_string()),
            ("name".to_string(), "example.com/app".to_string()),
        ];
        assert_eq!(
            render("https://h/{name}-{version}-{os}.{ext}", &vars, "aci").as_deref(),
            Some("https://h/example.com/app-1.0-linux.aci")
        );
        assert_eq!(render("https://h/{name}-{arch}.{ext}", &vars, "aci"), None);
        assert_eq!(render("https://h/{name}.aci", &vars, "aci"), None);
    }
}
