-- Usage records (one per finished request) and per-minute rollups.
-- Applied with `wrangler d1 migrations apply USAGE` (locally by scripts/dev and the tests).
CREATE TABLE usage_requests (
  request_id TEXT PRIMARY KEY,
  ts INTEGER NOT NULL,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  team TEXT,
  project TEXT,
  agent TEXT,
  tags TEXT,
  model TEXT NOT NULL,
  served_model TEXT,
  provider TEXT,
  upstream_model TEXT,
  region TEXT,
  stream INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  latency_ms INTEGER NOT NULL DEFAULT 0,
  ttft_ms INTEGER,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cached_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  tool_calls_valid INTEGER,
  rolled_up INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX usage_requests_ts ON usage_requests (ts);
CREATE INDEX usage_requests_key_ts ON usage_requests (key, ts);
CREATE INDEX usage_requests_pending ON usage_requests (rolled_up) WHERE rolled_up = 0;

CREATE TABLE usage_minutes (
  minute INTEGER NOT NULL,
  key TEXT NOT NULL,
  team TEXT NOT NULL,
  project TEXT NOT NULL,
  agent TEXT NOT NULL,
  model TEXT NOT NULL,
  provider TEXT NOT NULL,
  region TEXT NOT NULL,
  status_class TEXT NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  latency_ms_sum INTEGER NOT NULL,
  ttft_ms_sum INTEGER NOT NULL,
  ttft_count INTEGER NOT NULL,
  tool_calls_checked INTEGER NOT NULL,
  tool_calls_valid INTEGER NOT NULL,
  PRIMARY KEY (minute, key, team, project, agent, model, provider, region, status_class)
);
