//! Checking the `[[routes]]` tables: names, paths, schemes, tolerances, allowlists, and
//! each route's secrets, loaded here so that every problem is reported at once.

use std::time::Duration;

use super::{custom, file, CustomScheme, KeyForm, Route, SchemeKind};

pub(super) fn check_routes(
    routes: &[file::RouteSection],
    problems: &mut Vec<String>,
) -> Vec<Route> {
    if routes.is_empty() {
        problems.push("no [[routes]]: at least one protected route is needed".into());
    }

    let mut checked = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        let at = format!("[[routes]] #{} ({:?})", i + 1, r.name);
        let name_ok = !r.name.is_empty()
            && r.name.len() <= 64
            && r.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            problems.push(format!("{at}: name must be 1-64 of A-Z a-z 0-9 - _ ."));
        }
        if routes[..i].iter().any(|o| o.name == r.name) {
            problems.push(format!("{at}: the name is used by an earlier route"));
        }
        if !r.path.starts_with('/') || r.path.contains(['?', '#']) {
            problems.push(format!(
                "{at}: path {:?} must start with / and hold no query",
                r.path
            ));
        }
        if routes[..i].iter().any(|o| o.path == r.path) {
            problems.push(format!(
                "{at}: path {:?} is used by an earlier route",
                r.path
            ));
        }
        let scheme = SchemeKind::from_name(&r.scheme);
        if scheme.is_none() {
            let known: Vec<&str> = SchemeKind::ALL.iter().map(|s| s.name()).collect();
            problems.push(format!(
                "{at}: unknown scheme {:?} (known: {})",
                r.scheme,
                known.join(", ")
            ));
        }
        let custom = check_custom(r, scheme, &at, problems);
        if r.tolerance_seconds == 0 {
            problems.push(format!("{at}: tolerance_seconds must be at least 1"));
        }
        if r.tolerance_future_seconds == Some(0) {
            problems.push(format!("{at}: tolerance_future_seconds must be at least 1"));
        }
        if r.events
            .as_ref()
            .is_some_and(|e| e.is_empty() || e.iter().any(String::is_empty))
        {
            problems.push(format!(
                "{at}: events must list at least one non-empty event type"
            ));
        }
        if r.max_body_bytes == 0 {
            problems.push(format!("{at}: max_body_bytes must be at least 1"));
        }
        if r.secrets.is_empty() {
            problems.push(format!("{at}: secrets is empty; give at least one"));
        }
        let key_ids: Vec<String> = (0..r.secrets.len())
            .map(|k| {
                r.secrets[k]
                    .id()
                    .map_or_else(|| k.to_string(), str::to_string)
            })
            .collect();
        for (k, id) in key_ids.iter().enumerate() {
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !id_ok {
                problems.push(format!(
                    "{at}: secret id {id:?} must be 1-64 of A-Z a-z 0-9 - _ ."
                ));
            }
            if key_ids[..k].contains(id) {
                problems.push(format!("{at}: secret id {id:?} is used twice"));
            }
        }
        let mut secrets = Vec::new();
        let form = match (&custom, scheme) {
            (Some(spec), _) => spec.key_form,
            (None, scheme) => scheme.map_or(KeyForm::Raw, SchemeKind::key_form),
        };
        for source in &r.secrets {
            match source.load_as(form) {
                Ok(secret) => secrets.push(secret),
                Err(e) => problems.push(format!("{at}: {e}")),
            }
        }
        if let Some(scheme) = scheme {
            checked.push(Route {
                name: r.name.clone(),
                path: r.path.clone(),
                scheme,
                custom,
                tolerance: Duration::from_secs(r.tolerance_seconds),
                tolerance_future: Duration::from_secs(
                    r.tolerance_future_seconds.unwrap_or(r.tolerance_seconds),
                ),
                events: r.events.clone(),
                enforce: r.enforce,
                max_body_bytes: r.max_body_bytes,
                secrets,
                sources: r.secrets.clone(),
                key_ids,
            });
        }
    }
    checked
}

/// The `[routes.custom]` table: required with `scheme = "custom"`, refused elsewhere (it
/// would be silently ignored).
fn check_custom(
    r: &file::RouteSection,
    scheme: Option<SchemeKind>,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<CustomScheme> {
    match (scheme, &r.custom) {
        (Some(SchemeKind::Custom), Some(section)) => match custom::check(section) {
            Ok(spec) => Some(spec),
            Err(found) => {
                problems.extend(found.into_iter().map(|p| format!("{at}: {p}")));
                None
            }
        },
        (Some(SchemeKind::Custom), None) => {
            problems.push(format!(
                "{at}: scheme \"custom\" needs a [routes.custom] table describing the signature"
            ));
            None
        }
        (Some(other), Some(_)) => {
            problems.push(format!(
                "{at}: [routes.custom] is only read with scheme = \"custom\", not {:?}",
                other.name()
            ));
            None
        }
        _ => None,
    }
}
