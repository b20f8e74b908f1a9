//! This isolate's health reports not yet sent to their endpoints' objects
//! (`health_cache` flushes them). Their count and whether one is bad news are kept
//! as reports come and go, so a request asks both without walking the reports.

use super::durable::Report;
use std::collections::HashMap;

#[derive(Default)]
pub struct PendingReports {
    by_endpoint: HashMap<String, Vec<Report>>,
    len: usize,
    bad_news: bool,
}

impl PendingReports {
    pub fn push(&mut self, provider_id: &str, report: Report) {
        self.len += 1;
        self.bad_news |= report.outcome.is_bad_news();
        match self.by_endpoint.get_mut(provider_id) {
            Some(reports) => reports.push(report),
            None => {
                self.by_endpoint.insert(provider_id.to_string(), vec![report]);
            }
        }
    }

    /// The endpoint's reports, taken out (to go with a question to its object).
    pub fn take(&mut self, provider_id: &str) -> Vec<Report> {
        let taken = self.by_endpoint.remove(provider_id).unwrap_or_default();
        if !taken.is_empty() {
            self.len -= taken.len();
            self.bad_news = self.by_endpoint.values().flatten().any(|r| r.outcome.is_bad_news());
        }
        taken
    }

    /// Reports taken out but not delivered: back in, before those recorded since.
    pub fn put_back(&mut self, provider_id: &str, mut reports: Vec<Report>) {
        if reports.is_empty() {
            return;
        }
        self.len += reports.len();
        self.bad_news |= reports.iter().any(|r| r.outcome.is_bad_news());
        reports.extend(self.by_endpoint.remove(provider_id).unwrap_or_default());
        self.by_endpoint.insert(provider_id.to_string(), reports);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn has_bad_news(&self) -> bool {
        self.bad_news
    }

    /// Every report, by endpoint, for a flush.
    pub fn drain(&mut self) -> Vec<(String, Vec<Report>)> {
        self.len = 0;
        self.bad_news = false;
        self.by_endpoint.drain().collect()
    }
}
