//! Data residency: which region tags a request may be served in.
//!
//! The allowed set is the intersection of the key's pinned policies, the client's
//! narrowing (`x-gateway-region`) and the first geo rule matching the client's
//! location. It is computed over the region tags the config actually has, so an
//! empty intersection is detected up front and never silently widened.

use crate::config::{Config, GeoRule, KeyRecord, Residency};
use crate::error::GatewayError;
use serde::Serialize;
use std::collections::BTreeSet;

/// Where the client is, from `request.cf` (every field may be missing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientLocation {
    pub country: Option<String>,
    pub continent: Option<String>,
    pub is_eu_country: bool,
}

/// One source of restriction and the policies it allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Constraint {
    /// `key`, `request` (the x-gateway-region header) or `geo`.
    pub source: &'static str,
    pub policies: Vec<String>,
    /// Why it applies (e.g. the geo rule's description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedRegions {
    pub constraints: Vec<Constraint>,
    /// The config's region tags that satisfy every constraint.
    pub regions: BTreeSet<String>,
}

impl AllowedRegions {
    pub fn is_restricted(&self) -> bool {
        !self.constraints.is_empty()
    }

    /// Narrowed to the regions a stored conversation is held to: a conversation
    /// started under a residency policy never continues outside it.
    pub fn within_conversation(mut self, regions: &[String]) -> Result<Self, GatewayError> {
        let kept = set_of(if self.is_restricted() {
            self.regions.iter().filter(|r| regions.contains(r)).cloned().collect()
        } else {
            regions.to_vec()
        });
        if kept.is_empty() {
            return Err(GatewayError::new(
                403,
                "invalid_request_error",
                "region_not_allowed",
                format!(
                    "The stored conversation is held to regions [{}], which this request may not use.",
                    regions.join(", ")
                ),
            ));
        }
        self.constraints.push(Constraint {
            source: "conversation",
            policies: regions.to_vec(),
            because: Some("the stored conversation's regions".into()),
        });
        self.regions = kept;
        Ok(self)
    }

    /// Checked for every candidate and again right before every upstream call.
    pub fn permits(&self, region: &str) -> bool {
        !self.is_restricted() || self.regions.contains(region)
    }

    /// A human-readable statement of the policy, for errors and explain output.
    pub fn describe(&self) -> String {
        if !self.is_restricted() {
            return "unrestricted".into();
        }
        self.constraints
            .iter()
            .map(|c| {
                let because = c.because.as_deref().map(|b| format!(" ({b})")).unwrap_or_default();
                format!("{} policy [{}]{because}", c.source, c.policies.join(", "))
            })
            .collect::<Vec<_>>()
            .join(" ∩ ")
    }
}

/// Whether a region tag satisfies a policy: as listed in the config, or else by
/// hierarchy (`eu` is satisfied by `eu` and `eu-de`, never by `europe-west`).
pub fn satisfies(residency: &Residency, policy: &str, region: &str) -> bool {
    match residency.policies.get(policy) {
        Some(tags) => tags.iter().any(|t| t == region),
        None => region == policy || region.strip_prefix(policy).is_some_and(|rest| rest.starts_with('-')),
    }
}

/// The first geo rule that matches the client's location.
pub fn matching_geo_rule<'a>(rules: &'a [GeoRule], location: &ClientLocation) -> Option<&'a GeoRule> {
    rules.iter().find(|rule| {
        let country = location.country.as_deref();
        country.is_some_and(|c| rule.countries.iter().any(|r| r.eq_ignore_ascii_case(c)))
            || location.continent.as_deref().is_some_and(|c| rule.continents.iter().any(|r| r.eq_ignore_ascii_case(c)))
            || (rule.eu_countries && location.is_eu_country)
            || (rule.unknown_location && country.is_none_or(|c| c.is_empty() || c == "XX" || c == "T1"))
    })
}

/// Parses `x-gateway-region: eu, eu-de` into policy names.
pub fn parse_narrowing(header: &str) -> Result<Vec<String>, GatewayError> {
    let policies: Vec<String> =
        header.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect();
    let valid = |p: &String| {
        p.len() <= 64 && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    };
    if policies.is_empty() || !policies.iter().all(valid) {
        return Err(GatewayError::invalid_request(
            "invalid_region",
            "The x-gateway-region header must list region policies, e.g. `eu` or `eu, eu-de`.",
        ));
    }
    Ok(policies)
}

pub fn allowed(
    config: &Config,
    key: &KeyRecord,
    narrowing: Option<Vec<String>>,
    location: &ClientLocation,
) -> Result<AllowedRegions, GatewayError> {
    let residency = &config.residency;
    let mut constraints = Vec::new();
    if !key.regions.is_empty() {
        constraints.push(Constraint { source: "key", policies: key.regions.clone(), because: None });
    }
    if let Some(rule) = matching_geo_rule(&residency.geo_rules, location) {
        let because = rule.description.clone().or_else(|| location.country.as_ref().map(|c| format!("client in {c}")));
        constraints.push(Constraint { source: "geo", policies: rule.allow.clone(), because });
    }
    let before_narrowing = tags_satisfying(config, &constraints);
    if let Some(policies) = narrowing {
        constraints.push(Constraint { source: "request", policies, because: Some("x-gateway-region".into()) });
    }
    let regions = tags_satisfying(config, &constraints);
    let allowed = AllowedRegions { constraints, regions };
    if allowed.is_restricted() && allowed.regions.is_empty() {
        let message = if before_narrowing.is_empty() {
            format!("No region satisfies this request's residency policy: {}.", allowed.describe())
        } else {
            format!(
                "x-gateway-region may only narrow the allowed regions; it asks for a region outside {}.",
                AllowedRegions {
                    constraints: allowed.constraints[..allowed.constraints.len() - 1].to_vec(),
                    regions: before_narrowing
                }
                .describe()
            )
        };
        return Err(GatewayError::new(403, "permission_error", "region_not_allowed", message));
    }
    Ok(allowed)
}

fn tags_satisfying(config: &Config, constraints: &[Constraint]) -> BTreeSet<String> {
    set_of(
        config
            .providers
            .values()
            .map(|p| p.region.as_str())
            .filter(|region| {
                constraints.iter().all(|c| c.policies.iter().any(|p| satisfies(&config.residency, p, region)))
            })
            .map(str::to_string)
            .collect(),
    )
}

/// Inserted one by one: collecting into a `BTreeSet` sorts first, one sort
/// instantiation per iterator type.
fn set_of(regions: Vec<String>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for region in regions {
        set.insert(region);
    }
    set
}
