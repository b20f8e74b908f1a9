//! Usage analytics, pure: who a request is for (`attribution`), the record each
//! finished request produces (`record`), the SQL that stores and rolls records up
//! in D1 (`store`), and the query API's parsing and aggregation (`query`, `report`).
//! The edge sends records to a Queue off the answer's path and runs this SQL.

pub mod attribution;
pub mod monitor;
pub mod query;
pub mod record;
pub mod report;
pub mod store;
pub mod time;

pub use attribution::Attribution;
pub use record::UsageRecord;

#[cfg(test)]
mod tests;
